"""Media: thumbnails and EXIF summaries of uploaded photos, made by a worker job; the thumbnail endpoint."""
