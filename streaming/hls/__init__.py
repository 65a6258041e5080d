"""HLS over HTTP: the stable live URL of each chamber (LL-HLS), each session's recorded
playlists and media, the gateway's fast path for the hot live routes, and viewer beacons."""
