import Hummingbird
import NIOCore

/// The request context of the service's router: the basic one, plus the peer's address (the 1601-compatible endpoint
/// limits wrong passwords per client address).
package struct ResellerRequestContext: RequestContext, RemoteAddressRequestContext {
    package var coreContext: CoreRequestContextStorage
    /// The TCP peer: the client, or a proxy in front of the service.
    package let remoteAddress: SocketAddress?

    package init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}
