"""Pictures and datasets: a file becomes network input (reading, images), the built-in sets
(sources), imported ones on disk (catalog, archive, importer), one door to load any (registry)."""
