/// Who is on the other end of a Unix socket (SO_PEERCRED): the kernel's
/// record of the peer at connect time, which the daemon uses to check that
/// the vCPU TIDs a VMM names are its own threads.
public struct PeerCredentials: Equatable, Sendable {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32

    public init(pid: Int32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }
}
