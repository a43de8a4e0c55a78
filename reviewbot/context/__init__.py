"""Code context: the diff model and the pre-/post-images from a tree."""
