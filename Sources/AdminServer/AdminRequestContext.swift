import Hummingbird
import NIOCore

/// Hummingbird's basic context plus the request's channel, so an export whose client stopped
/// reading can be cut off: its pending write waits on the socket and only a close ends it.
struct AdminRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}
