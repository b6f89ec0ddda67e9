"""TensorFlow's real ``gs://`` client against fake-gcs-server on loopback, with faults."""
