"""TensorRT: engine building and running (on Polygraphy), profiles, sidecars, op support, plugins."""
