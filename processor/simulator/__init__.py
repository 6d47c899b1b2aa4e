"""A simulator of the NICE CXone Data Actions API, for tests, demos and benchmarks.

It throttles, fails and counts the way the real API is described to, so the
processor can be proven against it on one machine.
"""

from processor.simulator.api import Reply, SimulatedApi
from processor.simulator.behaviour import Behaviour, BehaviourError, Latency, Window
from processor.simulator.server import Simulator, SimulatorThread

__all__ = [
    "Behaviour",
    "BehaviourError",
    "Latency",
    "Reply",
    "SimulatedApi",
    "Simulator",
    "SimulatorThread",
    "Window",
]
