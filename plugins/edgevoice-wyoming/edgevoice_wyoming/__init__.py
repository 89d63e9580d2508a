"""edgevoice as a Wyoming speech-to-text server: `edgevoice-wyoming --uri tcp://0.0.0.0:10300`.

protocol.py reads events within bounds and turns audio chunks into samples; session.py
recognises one stream on a worker thread while it arrives; server.py answers each client;
cli.py loads the daemon's YAML config and serves.
"""
