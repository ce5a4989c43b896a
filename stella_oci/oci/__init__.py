"""Generic OCI data: references, media types, descriptors, manifests, digests. No HTTP here."""
