"""The window's views: photo, depth, 3D viewport, parallax and depth-of-field previews."""
