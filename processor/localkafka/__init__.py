"""A real Apache Kafka for development, tests, the demo and the benchmark."""

from processor.localkafka.cluster import LocalKafka, Node
from processor.localkafka.jars import classpath

__all__ = ["LocalKafka", "Node", "classpath"]
