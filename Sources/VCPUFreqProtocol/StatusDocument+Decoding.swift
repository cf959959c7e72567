extension StatusDocument.VM {
    /// The spelling of a key decoder that restores acronyms (`peer_pid` →
    /// `peerPID`), as readers written before `CodingKeys` fixed the
    /// convertFromSnakeCase spelling (`peerPid`) do.
    private enum AcronymKeys: String, CodingKey {
        case peerPID, peerUID
    }

    /// Decodes with either spelling of `peer_pid` / `peer_uid`; the wire
    /// format (`peer_pid`) is unchanged.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let acronyms = try decoder.container(keyedBy: AcronymKeys.self)
        self.init(
            id: try container.decode(UInt32.self, forKey: .id),
            name: try container.decode(String.self, forKey: .name),
            profile: try container.decode(String.self, forKey: .profile),
            peerPID: try container.decodeIfPresent(Int32.self, forKey: .peerPID)
                ?? acronyms.decode(Int32.self, forKey: .peerPID),
            peerUID: try container.decodeIfPresent(UInt32.self, forKey: .peerUID)
                ?? acronyms.decode(UInt32.self, forKey: .peerUID),
            actuators: try container.decode(String.self, forKey: .actuators),
            kickMode: try container.decode(String.self, forKey: .kickMode),
            polling: try container.decode(Bool.self, forKey: .polling),
            sharedMapped: try container.decode(Bool.self, forKey: .sharedMapped),
            mirrorMapped: try container.decode(Bool.self, forKey: .mirrorMapped),
            counters: try container.decode(StatusDocument.Counters.self, forKey: .counters),
            invalidAccesses: try container.decode([String: UInt64].self, forKey: .invalidAccesses),
            vcpus: try container.decode([StatusDocument.VCPU].self, forKey: .vcpus))
        sharedPage = try container.decodeIfPresent(String.self, forKey: .sharedPage)
        sharedPageNote = try container.decodeIfPresent(String.self, forKey: .sharedPageNote)
    }
}
