"""What every Serve application shares: deployment options, app args, engine loading, metrics, HTTP codecs."""
