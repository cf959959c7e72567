#!/usr/bin/env python3
"""Checks of scripts/test-scmi-guest, independent of vcpufreq's own code: the expected guest view is
computed here from the topology file (tomllib), the guest's view is what its console printed, the
daemon's is its STATUS JSON, and the kernel's is the util-hint map (bpftool) or sched_getattr.

  scmi_guest_check.py expect TOPOLOGY [VM]              -> expected domains (JSON) on stdout
  scmi_guest_check.py sets EXPECT CONSOLE_LOG STATUS    -> check the userspace-governor phase
  scmi_guest_check.py requests EXPECT CONSOLE_LOG STATUS RESULTS -> the userspace settings for the report
  scmi_guest_check.py load EXPECT CONSOLE_LOG STATUS0 STATUS1 RESULTS -> check the schedutil phase
  scmi_guest_check.py hints STATUS PIN_PATH|uclamp|none VM -> the applied hints read back from the kernel
  scmi_guest_check.py report EXPECT CONSOLE_LOG RESULTS OUT.json
Each check prints one line per finding and exits 1 on the first failure set."""
import json
import os
import re
import subprocess
import sys
import tomllib


def fail(message):
    print(f"FAIL: {message}")
    sys.exit(1)


def expect(path, vm_name=None):
    with open(path, "rb") as f:
        topology = tomllib.load(f)
    host = topology["host"]
    clusters = {c["name"]: c for c in host["cluster"]}
    vms = topology["vm"]
    vm = next((v for v in vms if v["name"] == vm_name), None) if vm_name else vms[0]
    if vm is None:
        fail(f"no VM profile {vm_name}")
    names = vm["clusters"]
    numbers = vm.get("domains")
    if numbers is None:
        order = []
        numbers = []
        for name in names:
            if name not in order:
                order.append(name)
            numbers.append(order.index(name))
    headroom = vm.get("headroom", "auto")
    compensate = headroom == "schedutil" or (headroom == "auto" and host.get("governor") == "schedutil")
    domains, seen = [], {}
    for vcpu, number in enumerate(numbers):
        if number not in seen:
            seen[number] = len(domains)
            cluster = clusters[names[vcpu]]
            domains.append({"vcpus": [], "frequencies_khz": sorted(cluster["frequencies_khz"]),
                            "capacity": cluster["capacity"]})
        domains[seen[number]]["vcpus"].append(vcpu)
    policy = vm.get("policy", {})
    json.dump({"vm": vm["name"], "vcpus": vm.get("vcpus", len(names)), "compensate_headroom": compensate,
               "util_cap": vm.get("util_cap", 1024), "hysteresis": policy.get("hysteresis", 8),
               "domains": domains}, sys.stdout)


def utilization(khz, domain, expected, capped=True):
    """PolicyEngine.utilization(forPerformanceKHz:) written out again: capacity x perf / max, x 0.8
    with headroom compensation, rounded half up; then the VM's cap."""
    top = max(domain["frequencies_khz"])
    numerator, denominator = domain["capacity"] * min(khz, top), top
    if expected["compensate_headroom"]:
        numerator, denominator = numerator * 4, denominator * 5
    value = min((numerator + denominator // 2) // denominator, 1024)
    return min(value, expected["util_cap"]) if capped else value


def applied_level(khz, domain, expected):
    """The level the daemon applies for a LEVEL_SET of khz: held at the highest level whose
    utilization the VM's util_cap allows (docs/scmi.md)."""
    allowed = [f for f in domain["frequencies_khz"] if utilization(f, domain, expected, capped=False) <= expected["util_cap"]]
    return min(khz, max(allowed)) if allowed else min(domain["frequencies_khz"])


def guest_lines(console, tag):
    lines = []
    with open(console, errors="replace") as f:
        for line in f:
            line = line.strip().replace("\r", "")
            if line.startswith(tag + " "):
                lines.append(dict(kv.split("=", 1) for kv in line[len(tag) + 1:].split(" ") if "=" in kv))
    return lines


def policies(console):
    return [{"cpu": int(p["cpu"]), "related_cpus": [int(c) for c in p["related"].split(",") if c],
             "frequencies_khz": [int(k) for k in p["freqs"].split(",") if k]} for p in guest_lines(console, "POLICY")]


def scmi_vm(status_path, vm):
    with open(status_path) as f:
        status = json.load(f)
    for entry in status["vms"]:
        if entry["name"] == vm and entry.get("scmi"):
            return entry
    fail(f"STATUS has no SCMI VM named {vm}")


def check_sets(expect_path, console, status_path):
    expected = json.load(open(expect_path))
    guest = policies(console)
    if len(guest) != len(expected["domains"]):
        fail(f"the guest has {len(guest)} cpufreq policies; the topology has {len(expected['domains'])} domains")
    for domain in expected["domains"]:
        policy = next((p for p in guest if p["related_cpus"] == domain["vcpus"]), None)
        if policy is None:
            fail(f"no guest policy has related_cpus {domain['vcpus']} (guest: {[p['related_cpus'] for p in guest]})")
        if policy["frequencies_khz"] != domain["frequencies_khz"]:
            fail(f"policy{policy['cpu']} offers {policy['frequencies_khz']}; the topology says {domain['frequencies_khz']}")
        print(f"ok: policy{policy['cpu']} related_cpus {domain['vcpus']}, {len(domain['frequencies_khz'])} frequencies as in the topology")
    vm = scmi_vm(status_path, expected["vm"])
    sets = guest_lines(console, "SET")
    if len(sets) != len(expected["domains"]):
        fail(f"the guest reported {len(sets)} userspace settings for {len(expected['domains'])} policies")
    for entry in sets:
        cpu, khz, cur = int(entry["policy"]), int(entry["khz"]), int(entry["cur"])
        index, domain = next((i, d) for i, d in enumerate(expected["domains"]) if d["vcpus"][0] == cpu)
        if cur != khz:
            fail(f"policy{cpu}: scaling_setspeed {khz} but scaling_cur_freq {cur}")
        scmi = vm["scmi"]["domains"][index]
        level = applied_level(khz, domain, expected)
        if scmi["vcpus"] != domain["vcpus"] or scmi["requested_khz"] != khz or scmi["applied_khz"] != level:
            fail(f"daemon domain {index}: {scmi}; the guest set {khz} kHz on vCPUs {domain['vcpus']} (applied {level} expected)")
        first = vm["vcpus"][domain["vcpus"][0]]
        if first["last_request"] != f"scmi {level} kHz":
            fail(f"vCPU {domain['vcpus'][0]}: last request {first['last_request']!r}, expected 'scmi {level} kHz'")
        # The policy's hysteresis keeps an applied value that is closer than `hysteresis` to the
        # new one (the guest's governor may have asked for a neighbouring level before).
        want = utilization(level, domain, expected)
        tolerance = max(expected["hysteresis"] - 1, 0)
        applied = {vm["vcpus"][vcpu].get("util_min") for vcpu in domain["vcpus"]}
        for vcpu in domain["vcpus"]:
            got = vm["vcpus"][vcpu]
            if got["tid"] <= 0:
                fail(f"vCPU {vcpu} has no thread in STATUS")
            if got.get("util_min") is None or abs(got["util_min"] - want) > tolerance:
                fail(f"vCPU {vcpu} (tid {got['tid']}): util_min {got.get('util_min')}, expected {want} (±{tolerance}) for {khz} kHz")
        if len(applied) != 1:
            fail(f"domain {index}: its vCPUs hold different util_min {sorted(applied)}")
        print(f"ok: domain {index} ({scmi['name']}): guest set {khz} kHz, daemon requested it and applied {level} kHz, util_min {applied.pop()} "
              f"(expected {want} ±{tolerance}) on vCPUs {domain['vcpus']}")


def check_load(expect_path, console, before_path, after_path, results_path):
    expected = json.load(open(expect_path))
    before, after = scmi_vm(before_path, expected["vm"])["scmi"], scmi_vm(after_path, expected["vm"])["scmi"]
    delta = after["level_sets"] - before["level_sets"]
    stats = guest_lines(console, "STATS")
    guest_transitions = sum(int(s["total_trans"]) for s in stats)
    if delta <= 0:
        fail(f"schedutil under load: the daemon counted no LEVEL_SET ({before['level_sets']} -> {after['level_sets']})")
    if guest_transitions <= 0:
        fail("schedutil under load: the guest's cpufreq stats show no transition")
    print(f"ok: schedutil under load: {delta} LEVEL_SETs counted by the daemon, {guest_transitions} transitions in the guest's stats")
    results = json.load(open(results_path))
    results["schedutil_level_sets"] = delta
    json.dump(results, open(results_path, "w"))


def read_hints(status_path, source, vm_name):
    """tid -> (util_min, util_max) as the kernel holds them."""
    with open(status_path) as f:
        status = json.load(f)
    vm = next(v for v in status["vms"] if v["name"] == vm_name)
    tids = [v["tid"] for v in vm["vcpus"]]
    if source == "none":
        return None
    if source == "uclamp":
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        hints = {}
        for tid in tids:
            buffer = ctypes.create_string_buffer(56)
            if libc.syscall(275 if os.uname().machine == "aarch64" else 315, tid, buffer, 56, 0) != 0:
                continue
            raw = buffer.raw
            hints[tid] = (int.from_bytes(raw[48:52], "little"), int.from_bytes(raw[52:56], "little"))
        return hints
    dump = json.loads(subprocess.run(["bpftool", "-j", "map", "dump", "pinned", source],
                                     check=True, capture_output=True, text=True).stdout)
    hints = {}
    for entry in dump:
        key, value = entry.get("formatted", entry)["key"], entry.get("formatted", entry)["value"]
        if isinstance(key, int) and isinstance(value, dict):
            hints[key] = (value["util_min"], value["util_max"])
    return {tid: hints[tid] for tid in tids if tid in hints}


def check_hints(status_path, source, vm_name):
    hints = read_hints(status_path, source, vm_name)
    if hints is None:
        print("skip: the applied hints are not read back from the kernel (no uclamp and no BPF map on this host)")
        return True
    vm = next(v for v in json.load(open(status_path))["vms"] if v["name"] == vm_name)
    for vcpu in vm["vcpus"]:
        if vcpu.get("util_min") is None:
            continue
        got = hints.get(vcpu["tid"])
        if got != (vcpu["util_min"], vcpu["util_max"]):
            fail(f"vCPU {vcpu['index']} (tid {vcpu['tid']}): the kernel holds {got}, STATUS says {(vcpu['util_min'], vcpu['util_max'])}")
    print(f"ok: the kernel holds every vCPU thread's hint as STATUS reports it ({source})")
    return True


def report(expect_path, console, results_path, out_path):
    expected = json.load(open(expect_path))
    results = json.load(open(results_path))
    guest = policies(console)
    out = {"guest_policies": [], "requests": results.get("requests", [])}
    for policy in guest:
        domain = next((d for d in expected["domains"] if d["vcpus"] == policy["related_cpus"]), None)
        out["guest_policies"].append({"related_cpus": policy["related_cpus"],
                                      "scaling_available_frequencies_khz": policy["frequencies_khz"],
                                      "topology_frequencies_khz": domain["frequencies_khz"] if domain else []})
    out["schedutil_level_sets"] = results.get("schedutil_level_sets")
    with open(out_path, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")


def requests(expect_path, console, status_path, out_path):
    """The userspace settings as {"domain", "khz", "applied"} for the JSON report."""
    expected = json.load(open(expect_path))
    vm = scmi_vm(status_path, expected["vm"])
    result = []
    for entry in guest_lines(console, "SET"):
        cpu, khz = int(entry["policy"]), int(entry["khz"])
        index = next(i for i, d in enumerate(expected["domains"]) if d["vcpus"][0] == cpu)
        result.append({"domain": index, "khz": khz,
                       "applied": vm["scmi"]["domains"][index]["applied_khz"] == applied_level(khz, expected["domains"][index], expected)})
    json.dump({"requests": result}, open(out_path, "w"))


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "expect":
        expect(*args)
    elif command == "sets":
        check_sets(*args)
    elif command == "load":
        check_load(*args)
    elif command == "hints":
        check_hints(*args)
    elif command == "requests":
        requests(*args)
    elif command == "report":
        report(*args)
    else:
        fail(f"unknown command {command}")
