"""The Bybit V5 wire protocol: environments, signing, typed schemas, REST client, WS session."""
