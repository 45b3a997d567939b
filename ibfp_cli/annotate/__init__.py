"""Annotation work on top of the trackers: a video's boxes from seeds, re-tracking from
keyframes, review of doubtful runs, format conversion, drawing seeds, the demo."""
