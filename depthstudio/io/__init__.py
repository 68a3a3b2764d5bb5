"""Reading and writing files: images, depth maps, atomic writes."""
