"""The live edge: LL-HLS parts and segments cut from the files the recorder is writing, the
rendered playlists, the bytes cache and viewer counting. No HTTP and no archive here."""
