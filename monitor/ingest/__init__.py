"""Ingest: MQTT in, payloads decoded into readings, rejections to the dead-letter sink, readings into the journal."""
