"""Model packages: the card's schema, reading a package folder, checking graphs against it,
and the TensorRT engine manifests kept inside a package."""
