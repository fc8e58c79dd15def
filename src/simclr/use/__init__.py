"""Using a trained encoder: embeddings files, image search and its HTML page, export, pictures."""
