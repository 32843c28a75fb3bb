"""asyncio adapters: thin, and holding no Binance rules (those live in ``streamer.sansio``)."""
