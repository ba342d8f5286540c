import CZmq

/// The socket types this project uses.
public enum ZmqSocketType: Sendable {
    case pair, push, pull, dealer, router
    /// Answers requests one at a time (the ZAP handler's socket).
    case rep

    var raw: Int32 {
        switch self {
        case .pair: ZMQ_PAIR
        case .push: ZMQ_PUSH
        case .pull: ZMQ_PULL
        case .dealer: ZMQ_DEALER
        case .router: ZMQ_ROUTER
        case .rep: ZMQ_REP
        }
    }
}

/// A ZeroMQ socket.
///
/// **One socket belongs to one thread.** libzmq sockets are not thread-safe: create, use and
/// close a socket on the same thread, and hand work to other threads through queues
/// (docs/architecture.md). The class is deliberately not `Sendable`.
///
/// No call blocks forever: every receive and send takes a deadline and polls (`zmq_poll`)
/// until it; the socket is closed with a bounded linger, so closing cannot hang either.
public final class ZmqSocket {
    private var handle: UnsafeMutableRawPointer?
    /// The context the socket was made from (a ZAP handler guards the sockets of its own context).
    let context: ZmqContext
    /// The endpoint last bound or connected, for error messages.
    public private(set) var endpoint: String = "(unbound)"

    /// - Parameter linger: how long unsent messages may delay `close`; 0 drops them at once.
    public init(_ context: ZmqContext, type: ZmqSocketType, linger: Duration = .zero) throws(ZmqError) {
        guard let handle = zmq_socket(context.handle, type.raw) else { throw .last("zmq_socket") }
        self.handle = handle
        self.context = context
        try setOption(ZMQ_LINGER, Int32(min(max(linger.inMilliseconds.rounded(.up), 0), 3_600_000)), "ZMQ_LINGER")
    }

    deinit { close() }

    /// Closes now; pending outgoing messages wait at most the linger given at creation.
    public func close() {
        if let handle {
            zmq_close(handle)
            self.handle = nil
        }
    }

    private func live(_ operation: @autoclosure () -> String) throws(ZmqError) -> UnsafeMutableRawPointer {
        guard let handle else { throw .call(operation: operation(), errno: ENOTSOCK, text: "socket already closed") }
        return handle
    }

    // MARK: Options

    public func setOption(_ option: Int32, _ value: Int32, _ name: String) throws(ZmqError) {
        let handle = try live("zmq_setsockopt \(name)")
        var value = value
        if zmq_setsockopt(handle, option, &value, MemoryLayout<Int32>.size) != 0 { throw .last("zmq_setsockopt \(name)") }
    }

    public func setOption(_ option: Int32, bytes: [UInt8], _ name: String) throws(ZmqError) {
        let handle = try live("zmq_setsockopt \(name)")
        let result = bytes.withUnsafeBytes { zmq_setsockopt(handle, option, $0.baseAddress, $0.count) }
        if result != 0 { throw .last("zmq_setsockopt \(name)") }
    }

    public func setOption(_ option: Int32, int64 value: Int64, _ name: String) throws(ZmqError) {
        let handle = try live("zmq_setsockopt \(name)")
        var value = value
        if zmq_setsockopt(handle, option, &value, MemoryLayout<Int64>.size) != 0 { throw .last("zmq_setsockopt \(name)") }
    }

    /// Room above a payload limit for small header parts, a ROUTER identity and CURVE's
    /// per-message overhead (33 bytes), when a limit is turned into `setMaxMessageSize`.
    public static let messageSizeMargin = 4096

    /// The largest message part libzmq accepts from a peer (ZMQ_MAXMSGSIZE); nil: no limit.
    /// libzmq checks the size announced on the wire before buffering the part, and
    /// disconnects a peer that announces a larger one: that message is never delivered,
    /// other peers are unaffected. Set it before `bind`/`connect` (it applies to connections
    /// made afterwards).
    public func setMaxMessageSize(_ bytes: Int?) throws(ZmqError) {
        try setOption(ZMQ_MAXMSGSIZE, int64: Int64(bytes ?? -1), "ZMQ_MAXMSGSIZE")
    }

    /// The ZMQ_MAXMSGSIZE in force; -1 means no limit.
    public func maxMessageSize() throws(ZmqError) -> Int64 {
        let handle = try live("zmq_getsockopt ZMQ_MAXMSGSIZE")
        var value: Int64 = 0
        var size = MemoryLayout<Int64>.size
        if zmq_getsockopt(handle, ZMQ_MAXMSGSIZE, &value, &size) != 0 { throw .last("zmq_getsockopt ZMQ_MAXMSGSIZE") }
        return value
    }

    /// High-water marks in messages; 0 means no limit (the ring bounds its own queue).
    public func setHighWaterMarks(send: Int32, receive: Int32) throws(ZmqError) {
        try setOption(ZMQ_SNDHWM, send, "ZMQ_SNDHWM")
        try setOption(ZMQ_RCVHWM, receive, "ZMQ_RCVHWM")
    }

    // MARK: Endpoints

    /// Binds and returns the endpoint actually bound (ZMQ_LAST_ENDPOINT), so
    /// `tcp://127.0.0.1:*` yields the port the kernel chose.
    @discardableResult
    public func bind(_ endpoint: String) throws(ZmqError) -> String {
        let handle = try live("zmq_bind \(endpoint)")
        if zmq_bind(handle, endpoint) != 0 { throw .last("zmq_bind \(endpoint)") }
        var buffer = [CChar](repeating: 0, count: 1024)
        var size = buffer.count
        if zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, &buffer, &size) != 0 { throw .last("zmq_getsockopt ZMQ_LAST_ENDPOINT") }
        let bound = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        self.endpoint = bound
        return bound
    }

    /// Unbinds an endpoint now. For `inproc://` this frees the name at once, whereas `close()`
    /// leaves it to libzmq's reaper thread, so a socket bound to it next could still find it taken.
    public func unbind(_ endpoint: String) throws(ZmqError) {
        let handle = try live("zmq_unbind \(endpoint)")
        if zmq_unbind(handle, endpoint) != 0 { throw .last("zmq_unbind \(endpoint)") }
    }

    public func connect(_ endpoint: String) throws(ZmqError) {
        let handle = try live("zmq_connect \(endpoint)")
        if zmq_connect(handle, endpoint) != 0 { throw .last("zmq_connect \(endpoint)") }
        self.endpoint = endpoint
    }

    /// Publishes this socket's `events` (ZMQ_EVENT_* bits) on the inproc `endpoint`, where one
    /// PAIR socket may connect to read them (`HandshakeMonitor`); nil ends the publishing.
    func monitor(_ endpoint: String?, events: Int32) throws(ZmqError) {
        let operation = "zmq_socket_monitor \(endpoint ?? "off") of \(self.endpoint)"
        let handle = try live(operation)
        if zmq_socket_monitor(handle, endpoint, events) != 0 { throw .last(operation) }
    }

    // MARK: Waiting

    /// Waits until the socket is readable (`ZMQ_POLLIN`) or writable (`ZMQ_POLLOUT`), or the deadline.
    /// Returns false at the deadline.
    func wait(for events: Int16, until deadline: ContinuousClock.Instant, _ operation: String) throws(ZmqError) -> Bool {
        let handle = try live(operation)
        while true {
            var item = zmq_pollitem_t(socket: handle, fd: 0, events: events, revents: 0)
            let left = ContinuousClock.now.duration(to: deadline)
            // Poll at most 100 ms at a time; a zero or negative wait still polls once.
            let timeout = Int(min(max(left.inMilliseconds.rounded(.up), 0), 100))
            let ready = zmq_poll(&item, 1, timeout)
            if ready < 0 {
                if zmq_errno() == EINTR { continue }
                throw .last(operation)
            }
            if ready > 0 && (item.revents & events) != 0 { return true }
            if ContinuousClock.now >= deadline { return false }
        }
    }

    // MARK: Sending

    /// Sends one part (`more` = further parts of the same message follow), copying `bytes`.
    public func send(_ bytes: [UInt8], more: Bool = false, deadline: ContinuousClock.Instant) throws(ZmqError) {
        let message = ZmqMessage(copying: bytes)
        try send(message, more: more, deadline: deadline)
    }

    /// Sends all parts as one multipart message.
    public func send(parts: [[UInt8]], deadline: ContinuousClock.Instant) throws(ZmqError) {
        for (index, part) in parts.enumerated() {
            try send(part, more: index + 1 < parts.count, deadline: deadline)
        }
    }

    /// Sends `bytes` without copying them. libzmq reads the memory from its I/O thread until it
    /// calls back: `onRelease` runs (on an arbitrary thread) once libzmq no longer needs it.
    /// The caller keeps the memory alive and unchanged until then; `onRelease` also runs if
    /// sending fails.
    public func sendZeroCopy(_ bytes: UnsafeRawBufferPointer, more: Bool = false, deadline: ContinuousClock.Instant,
                             onRelease: @escaping @Sendable () -> Void) throws(ZmqError) {
        let message = ZmqMessage(borrowing: bytes, onRelease: onRelease)
        try send(message, more: more, deadline: deadline)
    }

    private func send(_ message: ZmqMessage, more: Bool, deadline: ContinuousClock.Instant) throws(ZmqError) {
        let operation = "zmq_msg_send to \(endpoint)"
        let handle = try live(operation)
        let flags = ZMQ_DONTWAIT | (more ? ZMQ_SNDMORE : 0)
        while true {
            if zmq_msg_send(message.pointer, handle, flags) >= 0 { return }
            let number = zmq_errno()
            if number == EINTR { continue }
            guard number == EAGAIN else { throw .last(operation) }
            let start = ContinuousClock.now
            guard try wait(for: Int16(ZMQ_POLLOUT), until: deadline, operation) else {
                throw .timedOut(operation: "send", endpoint: endpoint, seconds: secondsSince(start, deadline))
            }
        }
    }

    // MARK: Receiving

    /// Receives one part, waiting at most until `deadline`.
    public func receiveMessage(deadline: ContinuousClock.Instant) throws(ZmqError) -> ZmqMessage {
        let operation = "zmq_msg_recv from \(endpoint)"
        let handle = try live(operation)
        let message = ZmqMessage()
        let start = ContinuousClock.now
        while true {
            if zmq_msg_recv(message.pointer, handle, ZMQ_DONTWAIT) >= 0 { return message }
            let number = zmq_errno()
            if number == EINTR { continue }
            guard number == EAGAIN else { throw .last(operation) }
            guard try wait(for: Int16(ZMQ_POLLIN), until: deadline, operation) else {
                throw .timedOut(operation: "receive", endpoint: endpoint, seconds: secondsSince(start, deadline))
            }
        }
    }

    /// Receives one part as bytes.
    public func receive(deadline: ContinuousClock.Instant) throws(ZmqError) -> [UInt8] {
        try receiveMessage(deadline: deadline).bytes
    }

    /// Receives every part of one multipart message. Parts of a message arrive together, so
    /// after the first, the rest are read without waiting.
    ///
    /// A message of more than `maxParts` parts is read to its end and discarded, then
    /// `ZmqError.tooManyParts` is thrown: the next receive starts at the next message.
    public func receiveParts(deadline: ContinuousClock.Instant, maxParts: Int = 64) throws(ZmqError) -> [ZmqMessage] {
        var parts = [try receiveMessage(deadline: deadline)]
        while let last = parts.last, last.hasMore {
            guard parts.count < maxParts else {
                var count = parts.count
                parts.removeAll()   // release the kept parts' buffers while draining
                var more = true
                while more {
                    more = try receiveMessage(deadline: .now + .seconds(1)).hasMore
                    count += 1
                }
                throw .tooManyParts(endpoint: endpoint, parts: count, limit: maxParts)
            }
            parts.append(try receiveMessage(deadline: .now + .seconds(1)))
        }
        return parts
    }

    private func secondsSince(_ start: ContinuousClock.Instant, _ deadline: ContinuousClock.Instant) -> Double {
        start.duration(to: max(deadline, start)).inSeconds
    }
}

extension ZmqMessage {
    convenience init(copying bytes: [UInt8]) {
        self.init(uninitialized: ())
        zmq_msg_init_size(pointer, bytes.count)
        bytes.withUnsafeBytes { source in
            if let base = source.baseAddress { zmq_msg_data(pointer).copyMemory(from: base, byteCount: source.count) }
        }
    }

    convenience init(borrowing bytes: UnsafeRawBufferPointer, onRelease: @escaping @Sendable () -> Void) {
        self.init(uninitialized: ())
        let box = Unmanaged.passRetained(ReleaseBox(onRelease)).toOpaque()
        let start = UnsafeMutableRawPointer(mutating: bytes.baseAddress)
        // ffn: called by libzmq (any thread) once the buffer is no longer needed.
        zmq_msg_init_data(pointer, start, bytes.count, { _, hint in
            guard let hint else { return }
            Unmanaged<ReleaseBox>.fromOpaque(hint).takeRetainedValue().run()
        }, box)
    }
}

private final class ReleaseBox {
    let action: @Sendable () -> Void
    init(_ action: @escaping @Sendable () -> Void) { self.action = action }
    func run() { action() }
}

extension Duration {
    /// This duration in seconds, as a Double.
    public var inSeconds: Double {
        let (whole, attoseconds) = components
        return Double(whole) + Double(attoseconds) / 1e18
    }

    var inMilliseconds: Double { inSeconds * 1000 }
}
