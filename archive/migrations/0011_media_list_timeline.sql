-- The media check placed holes, drift and stream extents by the file's own timestamps: the
-- segment list's timeline plus the MPEG-TS muxer's offset (1.4 s), while a run's anchor places
-- the list's timeline, so every hole sat 1.4 s late. Move them onto the list's timeline: a
-- segment's first video frame (its first audio frame without video) is where the list says it
-- starts.
UPDATE media_holes SET media_at = media_at - (
    SELECT COALESCE(s.video_start, s.audio_start) - s.media_start FROM segments s
    WHERE s.id = media_holes.segment_id
) WHERE (
    SELECT COALESCE(s.video_start, s.audio_start) FROM segments s
    WHERE s.id = media_holes.segment_id
) IS NOT NULL;
UPDATE segments SET
    video_start = video_start - (COALESCE(video_start, audio_start) - media_start),
    video_end = video_end - (COALESCE(video_start, audio_start) - media_start),
    audio_start = audio_start - (COALESCE(video_start, audio_start) - media_start),
    audio_end = audio_end - (COALESCE(video_start, audio_start) - media_start)
WHERE media_checked = 1 AND COALESCE(video_start, audio_start) IS NOT NULL;
