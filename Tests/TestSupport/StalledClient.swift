import Foundation

/// An HTTP client that sends one request and then stops reading: its receive buffer is small
/// and stays full, so a streamed response backs up into the server, as behind a client that
/// hangs or reads at a trickle.
public final class StalledClient {
    private let socket: Int32

    /// Connects to 127.0.0.1:`port` and sends `GET path` with `token` as the bearer.
    public init(port: Int, path: String, token: String) throws {
        socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw TestDatabase.Unavailable(description: "socket: \(String(cString: strerror(errno)))") }
        var small: Int32 = 4096
        setsockopt(socket, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(socket)
            throw TestDatabase.Unavailable(description: "connect: \(String(cString: strerror(errno)))")
        }
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nAuthorization: Bearer \(token)\r\n\r\n"
        _ = request.withCString { send(socket, $0, strlen($0), 0) }
    }

    deinit { close(socket) }

    /// The status of the response, from its first bytes (the rest stays unread), or nil when
    /// none came within `timeout`.
    public func status(timeout: Duration = .seconds(10)) -> Int? {
        var head: [UInt8] = []
        let deadline = ContinuousClock.now + timeout
        while head.count < 12, ContinuousClock.now < deadline {
            var pollfd = Foundation.pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
            guard poll(&pollfd, 1, 100) > 0 else { continue }
            var byte: UInt8 = 0
            guard recv(socket, &byte, 1, 0) == 1 else { return nil }
            head.append(byte)
        }
        let line = String(decoding: head, as: UTF8.self)  // "HTTP/1.1 200"
        return line.hasPrefix("HTTP/1.1 ") ? Int(line.dropFirst(9).prefix(3)) : nil
    }

    /// Reads (and drops) everything until the server closes the connection; false when it is
    /// still open after `timeout`.
    public func drainUntilClosed(timeout: Duration) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            var pollfd = Foundation.pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
            guard poll(&pollfd, 1, 100) > 0 else { continue }
            if recv(socket, &buffer, buffer.count, 0) <= 0 { return true }
        }
        return false
    }
}
