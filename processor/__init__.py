"""cxone-processor: feeds NICE CXone Data Actions jobs from Kafka."""

__version__ = "0.1.0"
