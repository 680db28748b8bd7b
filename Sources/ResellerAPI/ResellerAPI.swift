// The server types and the `APIProtocol` handler protocol are generated at build time from
// `openapi.yaml` (a symlink to the root spec) by the swift-openapi-generator build plugin.
