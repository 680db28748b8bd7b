// Placeholder so the package loads; delete once this target has real sources.
