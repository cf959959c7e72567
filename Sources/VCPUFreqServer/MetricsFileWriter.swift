import Dispatch
import Foundation
import Logging
import VCPUFreqLinux
import VCPUFreqProtocol

/// Renders and writes the Prometheus metrics file off the event loop: the
/// loop hands over a status document (a value) and goes on at once; a
/// writer queue renders the text (3.5 MB and tens of ms for 1024 tracked
/// vCPUs) and replaces the file atomically (temp file + rename, so a scraper
/// never reads half a file). A document that arrives while the previous one
/// is being written replaces any that waits: the file shows the newest
/// state, and nothing queues up behind a slow disk. Dispatch's worker
/// threads block the signals the daemon's signalfd reads.
final class MetricsFileWriter: Sendable {
    let path: String
    private let logger: Logger
    private let queue = DispatchQueue(label: "vcpufreq.metrics")
    private let pending = AnnotatedMutex<(document: StatusDocument?, writing: Bool)>((nil, false))

    init(path: String, logger: Logger) {
        self.path = path
        self.logger = logger
    }

    /// Hands `document` to the writer; returns without waiting.
    func submit(_ document: StatusDocument) {
        let start = pending.withLock { state -> Bool in
            state.document = document
            if state.writing { return false }
            state.writing = true
            return true
        }
        if start { queue.async { self.drain() } }
    }

    /// Writes `document` and waits until it is in the file (shutdown).
    func flush(_ document: StatusDocument) {
        submit(document)
        queue.sync {}
    }

    private func drain() {
        while let document = pending.withLock({ state -> StatusDocument? in
            guard let document = state.document else {
                state.writing = false
                return nil
            }
            state.document = nil
            return document
        }) {
            write(PrometheusExposition.render(document))
        }
    }

    private func write(_ text: String) {
        let temporary = path + ".tmp"
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: temporary))
            if rename(temporary, path) != 0 {
                throw ServerError("rename: \(String(cString: strerror(errno)))")
            }
        } catch {
            logger.warning("cannot write metrics", metadata: ["path": "\(path)", "error": "\(error)"])
        }
    }
}
