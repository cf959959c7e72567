/// The topology `vcpufreq demo` uses when none is given: a Tensor-class
/// phone (4 little + 2 mid + 2 big, three distinct tables) running an
/// 8-vCPU Android VM that mirrors it, schedutil headroom compensated.
enum EmbeddedTopology {
    static let phone = """
        # A Tensor-class phone: 4 little + 2 mid + 2 big, three distinct tables.
        [host]
        name = "phone (embedded)"
        governor = "schedutil"

        [[host.cluster]]
        name = "little"
        cpus = "0-3"
        capacity = 160
        frequencies_khz = [300000, 574000, 738000, 930000, 1098000, 1197000, 1328000, 1401000, 1598000, 1704000, 1803000]

        [[host.cluster]]
        name = "mid"
        cpus = "4-5"
        capacity = 498
        frequencies_khz = [400000, 553000, 696000, 799000, 910000, 1024000, 1197000, 1328000, 1491000, 1663000, 1836000, 1999000, 2130000, 2253000]

        [[host.cluster]]
        name = "big"
        cpus = "6-7"
        capacity = 1024
        frequencies_khz = [500000, 851000, 984000, 1106000, 1277000, 1426000, 1582000, 1745000, 1826000, 2048000, 2188000, 2252000, 2401000, 2507000, 2630000, 2704000, 2802000]

        [[vm]]
        name = "android"
        vcpus = 8
        clusters = ["little", "little", "little", "little", "mid", "mid", "big", "big"]
        headroom = "auto"

        [vm.policy]
        boost_hold_ms = 20
        """
}
