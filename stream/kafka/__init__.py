"""The Kafka side: client factories with the project's settings, and creating the topics."""
