"""The StellaOps meaning: export manifest models, schema validation, canonical digest,
annotations, bundles and the artifact layout. Nothing here speaks HTTP."""
