/// The five tests of `vcpufreq bench workload`, modelled on PCMark Work's
/// categories (bench/workload.md defines each). Every test is a seeded
/// pattern of compute bursts and idle gaps on every vCPU (`TestProgram`),
/// run by the guest's WORKLOAD op and timed inside the guest with its TSC.
public enum WorkloadTest: String, CaseIterable, Codable, Sendable {
    /// Page loads and scrolls: bursts of frames on a 60 Hz clock, each due
    /// one frame after its release, with reading pauses between.
    case webBrowsing = "web-browsing"
    /// Typing: tiny latency-critical bursts at typing rate (a keystroke to
    /// handle within `WorkloadTest.keystrokeDeadline`), now and then an
    /// autosave that is not latency-critical.
    case writing
    /// Filters applied to a picture: heavy bursts on every vCPU at once,
    /// the user looking at the result between them.
    case photoEditing = "photo-editing"
    /// Preview of an edited video: sustained frames on a 30 Hz clock, each
    /// due one frame after its release.
    case videoEditing = "video-editing"
    /// Spreadsheet work: mixed jobs, mostly memory-bound loops over a
    /// buffer larger than the caches, short pauses between.
    case dataManipulation = "data-manipulation"

    /// How a test's raw figure is computed (`TestOutcome.raw`).
    public enum Scoring: String, Codable, Sendable {
        /// Work per second of response time: Σ nominal work ÷ Σ (end −
        /// release), 1.0 when every job ran as fast as calibrated the moment
        /// it was released.
        case throughput
        /// Deadline-met rate × throughput: (jobs that ended within their
        /// deadline ÷ jobs with one) × jobs completed per second of the test.
        case deadline
    }

    /// The name PCMark-style tables print.
    public var name: String {
        switch self {
        case .webBrowsing: return "Web Browsing"
        case .writing: return "Writing"
        case .photoEditing: return "Photo Editing"
        case .videoEditing: return "Video Editing"
        case .dataManipulation: return "Data Manipulation"
        }
    }

    public var scoring: Scoring {
        switch self {
        case .webBrowsing, .writing, .videoEditing: return .deadline
        case .photoEditing, .dataManipulation: return .throughput
        }
    }

    /// A frame of a 60 Hz display, µs.
    public static let webFramePeriod = 16_667.0
    /// A frame of 30 fps video, µs.
    public static let videoFramePeriod = 33_333.0
    /// A keystroke must be handled (release → end) within this, µs: about a
    /// 60 Hz frame, the delay a typist starts to notice.
    public static let keystrokeDeadline = 16_667.0
}
