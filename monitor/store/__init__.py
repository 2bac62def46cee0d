"""Store: readings from the journal written to InfluxDB (v2 or v1 API) in line protocol."""
