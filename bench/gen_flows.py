#!/usr/bin/env python3
"""Generate one day of flow data and write the same records as four flow-export formats.

    gen_flows.py --out DIR [--connections N] [--seed S] [--jobs J] [--no-ipfix]
    gen_flows.py --replay DIR/netflow_v9.pcap --port P [--pps N]   (send to a collector)

The model is a network of ~4,000 internal hosts (10.0.0.0/8 and 192.168.0.0/16, a few
servers) talking to ~200,000 external addresses (Zipf popularity) and to each other over
24 hours with a business-day profile: HTTPS/QUIC/HTTP, DNS via an internal resolver, NTP,
SSH, SMTP, IMAPS, SMB/LDAP/RDP inside, ICMP echo, inbound HTTPS/SMTP/SSH scans; TCP states
SF/S0/REJ/RSTO/RSTR; heavy-tailed (lognormal/Pareto) byte counts; durations below 1800 s
(an exporter's active timeout, so no connection is split into several export records).

One *connection* is one Zeek conn.log line; as a flow export it is one unidirectional
record per direction that carried packets (the reverse record is missing for S0 and
unanswered UDP/ICMP), as softflowd, nprobe or a router export it. Files written to DIR:

  conn.log          Zeek conn.log TSV (#separator/#fields/#types header)
  flows.csv         `nfdump -o csv` (nfdump 1.7 header, Summary trailer); exporter 10.0.0.1
  netflow_v9.pcap   NetFlow v9 datagrams (template every 20 packets, 24-30 data records
                    each, packet sequence numbers) in Ethernet/IPv4/UDP to 10.0.100.5:2055
  ipfix.pcap        the same records as IPFIX (flowStart/EndMilliseconds) to port 4739
  meta.json         seed, counts, sizes, generation time, per-source-IP byte totals (the
                    expected `nfdump -s srcip/bytes` figures) for the top 50 sources

Deterministic for a given --seed and --connections (any --jobs): the connections are cut
into chunks of 100,000, each generated from its own seeded RNG; datagrams never span chunks.
Times are whole milliseconds, and the v9 header's sysUptime is taken at the whole second of
unix_secs, so every format carries exactly the same start/end times (nfdump CSV prints
seconds, as nfdump does).
"""

import argparse
import base64
import bisect
import json
import math
import os
import random
import socket
import struct
import sys
import time

GEN_VERSION = 1
CHUNK = 100_000
DAY0 = 1795737600  # 2026-11-27 00:00:00 UTC
DAY_MS = 86_400_000
BOOT_MS = (DAY0 - 3 * 86400) * 1000  # exporter booted three days before
EXPORTER_IP = "10.0.0.1"
COLLECTOR_IP = "10.0.100.5"
EXPORTER_SPORT = 50123
SOURCE_ID = 0  # v9 source id / IPFIX observation domain
TEMPLATE_ID = 256
TEMPLATE_EVERY = 20  # packets, Cisco's default template refresh
RECORDS_PER_CONN_MIN = 1.93  # the model gives 1.947 +- 0.001 export records per connection

# ------------------------------------------------------------------ network model
TABLE_BITS = 16


def alias_table(weights, bits=TABLE_BITS):
    """A list of 2**bits indices drawn proportionally to weights (table[getrandbits(bits)])."""
    n = 1 << bits
    total = float(sum(weights))
    out = []
    acc = 0.0
    prev = 0
    for i, w in enumerate(weights):
        acc += w
        upto = int(round(acc / total * n))
        out.extend([i] * (upto - prev))
        prev = upto
    out.extend([len(weights) - 1] * (n - len(out)))
    return out[:n]


def is_public(a):
    o1, o2 = a >> 24, (a >> 16) & 255
    if o1 in (0, 10, 127) or o1 >= 224:
        return False
    if o1 == 100 and 64 <= o2 < 128:
        return False
    if o1 == 169 and o2 == 254:
        return False
    if o1 == 172 and 16 <= o2 < 32:
        return False
    if o1 == 192 and o2 == 168:
        return False
    if o1 == 198 and o2 in (18, 19):
        return False
    if (a >> 8) in (0xC00002, 0xC63364, 0xCB0071, 0xC00000, 0xC05863):  # 192.0.2, 198.51.100, 203.0.113, 192.0.0, 192.88.99
        return False
    return True


def ip_str(a):
    return f"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}"


class IpNames(dict):
    """int -> dotted quad, filled on first use (much faster than formatting each time)."""

    def __missing__(self, a):
        s = self[a] = ip_str(a)
        return s


def ip_int(s):
    a, b, c, d = (int(x) for x in s.split("."))
    return (a << 24) | (b << 16) | (c << 8) | d


class Model:
    """Hosts, servers, services and the diurnal profile; built once from the seed."""

    def __init__(self, seed):
        rng = random.Random(f"{seed}:model")
        hosts = set()
        while len(hosts) < 3000:  # 10.<site 1-8>.<subnet 0-15>.<2-254>
            hosts.add((10 << 24) | (rng.randint(1, 8) << 16) | (rng.randint(0, 15) << 8) | rng.randint(2, 254))
        while len(hosts) < 4000:  # 192.168.<0-15>.<2-254>
            hosts.add((192 << 24) | (168 << 16) | (rng.randint(0, 15) << 8) | rng.randint(2, 254))
        self.hosts = sorted(hosts)
        # Activity per host: Pareto, so a few hosts are very busy.
        self.host_table = alias_table([rng.paretovariate(1.1) for _ in self.hosts])
        ext = set()
        while len(ext) < 200_000:
            a = rng.getrandbits(32)
            if is_public(a):
                ext.add(a)
        ext = sorted(ext)
        rng.shuffle(ext)
        self.ext = ext
        self.ext_table = alias_table([1.0 / (k + 1) ** 1.05 for k in range(len(ext))], 20)
        # External DNS servers the resolver asks (public resolvers + authoritative servers).
        self.dns_ext = [ip_int(x) for x in ("8.8.8.8", "8.8.4.4", "1.1.1.1", "9.9.9.9")] + ext[:400]
        self.resolver = ip_int("10.0.0.53")
        self.smb = [ip_int(f"10.0.1.{i}") for i in range(10, 21)]
        self.ldap = [ip_int("10.0.0.10"), ip_int("10.0.0.11")]
        self.intranet = [ip_int("10.0.3.80"), ip_int("192.168.1.80")]
        self.rdp = [ip_int(f"10.0.4.{i}") for i in range(20, 30)]
        self.mail = ip_int("10.0.2.25")
        self.dmz_web, self.dmz_mail, self.dmz_ssh = ip_int("10.0.5.10"), ip_int("10.0.5.11"), ip_int("10.0.5.12")
        # Business-day profile (relative rate per hour, UTC), minutes interpolated.
        hourly = [0.20, 0.16, 0.14, 0.14, 0.16, 0.25, 0.45, 0.80, 1.00, 1.00, 1.00, 0.95,
                  0.85, 0.95, 1.00, 1.00, 0.95, 0.80, 0.55, 0.45, 0.40, 0.35, 0.30, 0.24]
        cum = [0.0]
        for m in range(1440):
            h, f = divmod(m, 60)
            r = hourly[h] + (hourly[(h + 1) % 24] - hourly[h]) * f / 60
            cum.append(cum[-1] + r)
        self.cum = [c / cum[-1] for c in cum]


# Services: weight, kind. Kinds are handled in Gen.connection.
SERVICES = [
    (40.0, "https"), (6.0, "http"), (8.0, "quic"), (18.0, "dns_int"), (6.0, "dns_ext"),
    (1.5, "ntp"), (0.7, "ssh"), (0.5, "smtp_out"), (1.0, "imaps"), (4.0, "smb"),
    (0.5, "rdp"), (2.0, "ldap"), (2.0, "intranet"), (3.0, "tcp_other"), (1.5, "udp_other"),
    (2.0, "icmp_ext"), (1.0, "icmp_int"), (1.5, "in_https"), (0.5, "in_smtp"), (0.8, "in_ssh"),
]
SERVICE_TABLE = alias_table([w for w, _ in SERVICES], 12)
SERVICE_KIND = [k for _, k in SERVICES]
TCP_OTHER_PORTS = [8080, 8443, 5222, 3478, 9000, 6443, 1883, 5228]
UDP_OTHER_PORTS = [3478, 51820, 1194, 4500, 500, 19302]
# TCP end states: weight, state.
TCP_STATES = alias_table([86, 5, 3, 3.5, 2.5], 10)
TCP_STATE_NAME = ["SF", "S0", "REJ", "RSTO", "RSTR"]
PROTO_NAME = {6: "tcp", 17: "udp", 1: "icmp"}
NF_PROTO = {6: "TCP", 17: "UDP", 1: "ICMP"}

# ------------------------------------------------------------------ wire formats
V9_FIELDS = [  # (type, length)
    (8, 4), (12, 4), (15, 4), (10, 2), (14, 2), (2, 4), (1, 4), (22, 4), (21, 4),
    (7, 2), (11, 2), (6, 1), (4, 1), (5, 1), (9, 1), (13, 1),
]
V9_REC = struct.Struct(">IIIHHIIIIHHBBBBB")
assert V9_REC.size == sum(l for _, l in V9_FIELDS)
IPFIX_FIELDS = [
    (8, 4), (12, 4), (15, 4), (10, 4), (14, 4), (2, 8), (1, 8), (152, 8), (153, 8),
    (7, 2), (11, 2), (6, 2), (4, 1), (5, 1), (9, 1), (13, 1),
]
IPFIX_REC = struct.Struct(">IIIIIQQQQHHHBBBB")
assert IPFIX_REC.size == sum(l for _, l in IPFIX_FIELDS)


def v9_template_flowset():
    body = struct.pack(">HH", TEMPLATE_ID, len(V9_FIELDS)) + b"".join(struct.pack(">HH", t, l) for t, l in V9_FIELDS)
    return struct.pack(">HH", 0, 4 + len(body)) + body


def ipfix_template_set():
    body = struct.pack(">HH", TEMPLATE_ID, len(IPFIX_FIELDS)) + b"".join(struct.pack(">HH", t, l) for t, l in IPFIX_FIELDS)
    return struct.pack(">HH", 2, 4 + len(body)) + body


V9_TEMPLATE = v9_template_flowset()
IPFIX_TEMPLATE = ipfix_template_set()
V9_HDR = struct.Struct(">HHIIII")  # version, count, sysUptime, unix_secs, sequence, source id
IPFIX_HDR = struct.Struct(">HHIII")  # version, length, export time, sequence, domain
SET_HDR = struct.Struct(">HH")
PCAP_REC = struct.Struct("<IIII")
ETH = bytes.fromhex("525400123456" "001b54c25001" "0800")  # collector MAC, exporter MAC, IPv4
IP_SRC, IP_DST = socket.inet_aton(EXPORTER_IP), socket.inet_aton(COLLECTOR_IP)
IP_HDR = struct.Struct(">BBHHHBBH4s4s")
UDP_HDR = struct.Struct(">HHHH")


def frame(payload, dport, ip_id, ts_us):
    """pcap record: Ethernet/IPv4/UDP around payload (IP checksum set, UDP checksum 0)."""
    ulen = 8 + len(payload)
    tlen = 20 + ulen
    h = IP_HDR.pack(0x45, 0, tlen, ip_id, 0x4000, 64, 17, 0, IP_SRC, IP_DST)
    s = sum(struct.unpack(">10H", h))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    h = h[:10] + struct.pack(">H", ~s & 0xFFFF) + h[12:]
    n = 14 + tlen
    return PCAP_REC.pack(ts_us // 1_000_000, ts_us % 1_000_000, n, n) + ETH + h + UDP_HDR.pack(EXPORTER_SPORT, dport, ulen, 0) + payload


# ------------------------------------------------------------------ one chunk
_TS_CACHE = {}


def ts_str(sec):
    s = _TS_CACHE.get(sec)
    if s is None:
        s = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(sec))
        _TS_CACHE[sec] = s
    return s


def flag_str(f):
    return "".join(c if f & b else "." for c, b in zip("CEUAPRSF", (128, 64, 32, 16, 8, 4, 2, 1)))


FLAG_STR = [flag_str(f) for f in range(256)]
CSV_MID = ",0.0.0.0,0,0," + ",".join(["00:00:00:00:00:00"] * 4) + "," + ",".join(["0-0-0"] * 10) + ",    0.000,    0.000,    0.000," + EXPORTER_IP + ",0/0,1,"
UID_TR = bytes.maketrans(b"+/", b"xQ")


def gen_chunk(args):
    """Connections [c0, c1) of the day; returns the chunk's bytes per format and its tallies."""
    seed, idx, c0, c1, total, want_ipfix = args
    m = MODEL
    rng = random.Random(f"{seed}:chunk:{idx}")
    rnd, grb, lnv, rint = rng.random, rng.getrandbits, rng.lognormvariate, rng.randint
    hosts, host_table, ext, ext_table = m.hosts, m.host_table, m.ext, m.ext_table
    cum = m.cum
    ip_str = IpNames().__getitem__  # noqa: F811 (cached per chunk)
    n = c1 - c0
    uids = base64.b64encode(rng.randbytes(13 * n)).translate(UID_TR).decode()
    conn_lines = []
    recs = []  # (end_ms, src, dst, nh, in, out, pkts, bytes, first, last, sp, dp, flags, proto, smk, dmk)
    conns_by_kind = {}
    for j in range(n):
        i = c0 + j
        # End time: inverse of the day profile at (i + U) / total -> sorted ends.
        u = (i + rnd()) / total
        k = bisect.bisect_right(cum, u) - 1
        if k >= 1440:
            k = 1439
        frac = (u - cum[k]) / (cum[k + 1] - cum[k])
        end = DAY0 * 1000 + int((k + frac) * 60_000)
        kind = SERVICE_KIND[SERVICE_TABLE[grb(12)]]
        conns_by_kind[kind] = conns_by_kind.get(kind, 0) + 1
        h = hosts[host_table[grb(16)]]
        sport = rint(32768, 60999) if rnd() < 0.7 else rint(49152, 65535)
        proto = 6
        service = "-"
        state = "SF"
        rtt = rint(1, 40)
        # Defaults for TCP request/response.
        if kind == "https" or kind == "http" or kind == "imaps" or kind == "tcp_other":
            orig, resp = h, ext[ext_table[grb(20)]]
            dport = {"https": 443, "http": 80, "imaps": 993}.get(kind) or TCP_OTHER_PORTS[grb(3)]
            service = {"https": "ssl", "http": "http", "imaps": "ssl"}.get(kind, "-")
            op = int(lnv(6.8, 1.3))
            rp = int(lnv(9.0, 2.3))
            if rnd() < 0.02:  # an upload
                op = int(lnv(13.0, 1.8))
            dur = int(lnv(7.5, 2.0))
        elif kind == "quic":
            proto = 17
            orig, resp = h, ext[ext_table[grb(20)]]
            dport, service = 443, "quic"
            op = int(lnv(7.5, 1.4)) + 1200
            rp = int(lnv(9.5, 2.3)) + 1200
            if rnd() < 0.02:
                op = int(lnv(12.5, 1.8))
            dur = int(lnv(7.8, 2.0))
        elif kind == "dns_int" or kind == "dns_ext":
            proto = 17
            if kind == "dns_int":
                orig, resp = h, m.resolver
            else:
                orig, resp = m.resolver, m.dns_ext[rint(0, len(m.dns_ext) - 1)]
            dport, service = 53, "dns"
            op = rint(28, 70)
            rp = op + rint(16, 260)
            dur = rtt
        elif kind == "ntp":
            proto = 17
            orig, resp = h, ext[grb(8)]
            dport, service, op, rp, dur = 123, "ntp", 48, 48, rtt
        elif kind == "udp_other":
            proto = 17
            orig, resp = h, ext[ext_table[grb(20)]]
            dport = UDP_OTHER_PORTS[rint(0, len(UDP_OTHER_PORTS) - 1)]
            op = int(lnv(8.0, 1.8)) + 60
            rp = int(lnv(8.0, 1.8)) + 60
            dur = int(lnv(8.5, 1.8))
        elif kind == "ssh":
            orig, resp = h, ext[ext_table[grb(20)]]
            dport, service = 22, "ssh"
            op = int(lnv(8.5, 2.6)) + 2000
            rp = int(lnv(8.5, 2.0)) + 2000
            dur = int(lnv(10.0, 2.0))
        elif kind == "smtp_out":
            orig, resp = m.mail, ext[ext_table[grb(20)]]
            dport, service = 25, "smtp"
            op = int(lnv(10.0, 1.6)) + 500
            rp = rint(400, 900)
            dur = int(lnv(7.0, 1.0))
        elif kind == "smb" or kind == "ldap" or kind == "rdp" or kind == "intranet":
            orig = h
            if kind == "smb":
                resp, dport, service = m.smb[rint(0, len(m.smb) - 1)], 445, "smb"
                op, rp = int(lnv(9.0, 2.5)), int(lnv(11.0, 2.5))
            elif kind == "ldap":
                resp, dport, service = m.ldap[grb(1)], 389, "ldap"
                op, rp = int(lnv(6.5, 1.0)), int(lnv(7.5, 1.2))
            elif kind == "rdp":
                resp, dport, service = m.rdp[rint(0, len(m.rdp) - 1)], 3389, "rdp"
                op, rp = int(lnv(11.0, 1.5)), int(lnv(13.0, 1.5))
            else:
                resp, dport, service = m.intranet[grb(1)], 80, "http"
                op, rp = int(lnv(6.5, 1.0)), int(lnv(10.0, 1.8))
            dur = int(lnv(8.0, 2.2))
        elif kind == "icmp_ext" or kind == "icmp_int":
            proto = 1
            orig = h
            resp = ext[ext_table[grb(20)]] if kind == "icmp_ext" else hosts[host_table[grb(16)]]
            sport, dport = 8, 0  # echo request type/code, as Zeek logs them
            npk = 4 if rnd() < 0.6 else rint(1, 10)
            op = rp = 56 * npk
            dur = (npk - 1) * 1000 + rtt
            state = "OTH"
        else:  # inbound
            orig = ext[rint(0, len(ext) - 1)]
            sport = rint(1024, 65535)
            if kind == "in_https":
                resp, dport, service = m.dmz_web, 443, "ssl"
                op, rp = int(lnv(7.0, 1.5)), int(lnv(10.0, 2.0))
                dur = int(lnv(7.0, 2.0))
            elif kind == "in_smtp":
                resp, dport, service = m.dmz_mail, 25, "smtp"
                op, rp = int(lnv(9.5, 1.8)) + 500, rint(400, 900)
                dur = int(lnv(7.0, 1.0))
            else:  # SSH scans: mostly rejected or unanswered
                resp, dport = m.dmz_ssh, 22
                op, rp = rint(20, 2000), rint(20, 3000)
                dur = int(lnv(7.0, 1.5))
                state = "REJ" if rnd() < 0.5 else ("S0" if rnd() < 0.5 else "SF")
                service = "ssh" if state == "SF" else "-"
        if dur > 1_799_000:
            dur = 1_799_000
        cap = 2_000_000_000
        if op > cap:
            op = cap
        if rp > cap:
            rp = cap
        # Packets and IP bytes per direction, end state.
        if proto == 6:
            if state == "SF" and kind not in ("in_ssh",):
                state = TCP_STATE_NAME[TCP_STATES[grb(10)]]
            if state == "SF" or state == "RSTO" or state == "RSTR":
                so = -(-op // 1200)
                sr = -(-rp // 1300)
                op_k = 3 + so + (sr + 1) // 2
                rp_k = 2 + sr + (so + 1) // 2
                if state == "RSTO":
                    op_k -= 1
                    hist, fo, fr = "ShADadR", 0x1E, 0x1A
                elif state == "RSTR":
                    rp_k -= 1
                    hist, fo, fr = "ShADadr", 0x1A, 0x1E
                else:
                    hist, fo, fr = "ShADadFf", 0x1B, 0x1B
                oip = op + 52 * op_k + 8
                rip = rp + 52 * rp_k + 8
                if dur < 2 * rtt:
                    dur = 2 * rtt
            elif state == "S0":
                op = rp = 0
                op_k, rp_k = (1, 0) if rnd() < 0.6 else (rint(2, 3), 0)
                oip, rip = 60 * op_k, 0
                dur = 0 if op_k == 1 else (1000 if op_k == 2 else 3000)
                hist, fo, fr = "S", 0x02, 0
                service = "-"
            else:  # REJ
                op = rp = 0
                op_k, rp_k, oip, rip = 1, 1, 60, 40
                dur = rtt
                hist, fo, fr = "Sr", 0x02, 0x14
                service = "-"
        elif proto == 17:
            fo = fr = 0
            op_k = max(1, -(-op // 1200))
            rp_k = max(1, -(-rp // 1200))
            answered = rnd() >= (0.04 if dport == 53 else 0.08)
            if not answered:
                rp = rp_k = 0
                state, hist = "S0", "D"
                if op_k == 1:
                    dur = 0
            else:
                hist = "Dd"
                if op_k + rp_k == 2:
                    dur = rtt
            oip = op + 28 * op_k
            rip = rp + 28 * rp_k
        else:  # ICMP echo
            fo = fr = 0
            op_k = rp_k = op // 56
            if rnd() < 0.06:  # unanswered
                rp = rp_k = 0
            oip = op + 28 * op_k
            rip = rp + 28 * rp_k
            hist = "-"
        start = end - dur
        # Zeek conn.log line.
        ss, sms = divmod(start, 1000)
        single = op_k + rp_k == 1
        if single:
            dur_s = ob_s = rb_s = "-"
        else:
            ds, dms = divmod(dur, 1000)
            dur_s, ob_s, rb_s = f"{ds}.{dms:03d}000", str(op), str(rp)
        lo = "T" if (orig >> 24 == 10 or orig >> 16 == 0xC0A8) else "F"
        lr = "T" if (resp >> 24 == 10 or resp >> 16 == 0xC0A8) else "F"
        conn_lines.append(
            f"{ss}.{sms:03d}000\tC{uids[17 * j:17 * j + 17]}\t{ip_str(orig)}\t{sport}\t{ip_str(resp)}\t{dport}\t"
            f"{PROTO_NAME[proto]}\t{service}\t{dur_s}\t{ob_s}\t{rb_s}\t{state}\t{lo}\t{lr}\t0\t{hist}\t"
            f"{op_k}\t{oip}\t{rp_k}\t{rip}\t-"
        )
        # Export records: interfaces 1 = outside, 2 = inside, 3 = servers; masks /24 inside.
        oin = lo == "T"
        rin = lr == "T"
        if proto == 1:
            nsp, ndp, rsp, rdp = 0, 8 << 8, 0, 0  # ICMP type/code in the destination port
        else:
            nsp, ndp, rsp, rdp = sport, dport, dport, sport
        ifo = 2 if oin else 1
        ifr = (3 if oin else 2) if rin else 1
        mo = 24 if oin else 0
        mr = 24 if rin else 0
        last_f = start if op_k == 1 else end
        recs.append((end, orig, resp, ifo, ifr, op_k, oip, start, last_f, nsp, ndp, fo, proto, mo, mr))
        if rp_k:
            first_r = start + rtt if dur >= rtt else start
            last_r = first_r if rp_k == 1 else end
            if last_r < first_r:
                last_r = first_r
            recs.append((end, resp, orig, ifr, ifo, rp_k, rip, first_r, last_r, rsp, rdp, fr, proto, mr, mo))

    # Datagrams: 24-30 data records each, in export order; the last one of a chunk may be short.
    v9 = []
    ipfix = []
    v9_seq_at = []  # offsets of v9 sequence numbers within the chunk's pcap bytes
    ipfix_seq_at = []  # (offset, data records in the message)
    csv_lines = []
    per_src = {}
    v9_len = ipfix_len = 0
    nrec = len(recs)
    p = 0
    d = 0
    nh_out = ip_int("198.51.100.1")
    nh_in = ip_int("10.0.0.254")
    while p < nrec:
        cnt = rint(24, 30)
        group = recs[p:p + cnt]
        p += cnt
        last_end = group[-1][0]
        ts_us = last_end * 1000 + 1_000_000  # exported one second after the last flow ended
        secs = ts_us // 1_000_000
        uptime = secs * 1000 - BOOT_MS
        tr = f"{ts_str(secs)}.{(ts_us // 1000) % 1000:03d}"
        v9_data = []
        ipfix_data = []
        for (_e, sa, da, i_in, i_out, pk, by, first, last, sp, dp, fl, pr, smk, dmk) in group:
            nh = nh_out if i_out == 1 else nh_in
            v9_data.append(V9_REC.pack(sa, da, nh, i_in, i_out, pk, by, first - BOOT_MS, last - BOOT_MS, sp, dp, fl, pr, 0, smk, dmk))
            if want_ipfix:
                ipfix_data.append(IPFIX_REC.pack(sa, da, nh, i_in, i_out, pk, by, first, last, sp, dp, fl, pr, 0, smk, dmk))
            sas = ip_str(sa)
            fs, fms = divmod(first, 1000)
            ls = last // 1000
            td = last - first
            csv_lines.append(
                f"{ts_str(fs)},{ts_str(ls)},{td // 1000}.{td % 1000:03d},{sas},{ip_str(da)},{sp},{dp if pr != 1 else 0},{NF_PROTO[pr]},"
                f"{FLAG_STR[fl]},0,0,{pk},{by},0,0,{i_in},{i_out},0,0,{smk},{dmk},0,0,{ip_str(nh)}{CSV_MID}{tr}"
            )
            t = per_src.get(sa)
            if t is None:
                per_src[sa] = [1, pk, by]
            else:
                t[0] += 1
                t[1] += pk
                t[2] += by
        with_tpl = d % TEMPLATE_EVERY == 0
        body = b"".join(v9_data)
        pad = (-(4 + len(body))) % 4
        payload = V9_HDR.pack(9, len(group) + with_tpl, uptime, secs, 0, SOURCE_ID) + (V9_TEMPLATE if with_tpl else b"") + SET_HDR.pack(TEMPLATE_ID, 4 + len(body) + pad) + body + b"\0" * pad
        ip_id = (idx * 40503 + d) & 0xFFFF
        fr_ = frame(payload, 2055, ip_id, ts_us)
        v9_seq_at.append(v9_len + 16 + 42 + 12)
        v9.append(fr_)
        v9_len += len(fr_)
        if want_ipfix:
            body = b"".join(ipfix_data)
            sets = (IPFIX_TEMPLATE if with_tpl else b"") + SET_HDR.pack(TEMPLATE_ID, 4 + len(body)) + body
            payload = IPFIX_HDR.pack(10, 16 + len(sets), secs, 0, SOURCE_ID) + sets
            fr_ = frame(payload, 4739, ip_id, ts_us)
            ipfix_seq_at.append((ipfix_len + 16 + 42 + 8, len(group)))
            ipfix.append(fr_)
            ipfix_len += len(fr_)
        d += 1
    stats = {
        "connections": n,
        "records": nrec,
        "datagrams": d,
        "kinds": conns_by_kind,
        "first_ms": min(r[7] for r in recs),
        "last_ms": max(r[8] for r in recs),
    }
    return (
        idx,
        ("\n".join(conn_lines) + "\n").encode(),
        ("\n".join(csv_lines) + "\n").encode(),
        b"".join(v9), v9_seq_at,
        b"".join(ipfix), ipfix_seq_at,
        per_src, stats,
    )


MODEL = None


def conn_header():
    fields = ("ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto service duration orig_bytes resp_bytes "
              "conn_state local_orig local_resp missed_bytes history orig_pkts orig_ip_bytes resp_pkts "
              "resp_ip_bytes tunnel_parents").split()
    types = ("time string addr port addr port enum string interval count count string bool bool count "
             "string count count count count set[string]").split()
    opened = time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime(DAY0))
    return ("#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n"
            f"#open\t{opened}\n#fields\t" + "\t".join(fields) + "\n#types\t" + "\t".join(types) + "\n").encode()


CSV_HEADER = (b"ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt,opkt,obyt,in,out,sas,das,smk,dmk,dtos,dir,nh,nhb,"
              b"svln,dvln,ismc,odmc,idmc,osmc," + b",".join(b"mpls%d" % i for i in range(1, 11)) +
              b",cl,sl,al,ra,eng,exid,tr\n")
PCAP_HDR = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)


def generate(a):
    global MODEL
    t0 = time.time()
    os.makedirs(a.out, exist_ok=True)
    MODEL = Model(a.seed)  # before the pool forks: workers share it
    total = a.connections
    chunks = [(a.seed, k, c0, min(c0 + CHUNK, total), total, not a.no_ipfix)
              for k, c0 in enumerate(range(0, total, CHUNK))]
    names = {"conn": "conn.log", "csv": "flows.csv", "v9": "netflow_v9.pcap", "ipfix": "ipfix.pcap"}
    tmp = {k: os.path.join(a.out, v + ".tmp") for k, v in names.items()}
    files = {k: open(v, "wb", buffering=8 << 20) for k, v in tmp.items() if k != "ipfix" or not a.no_ipfix}
    files["conn"].write(conn_header())
    files["csv"].write(CSV_HEADER)
    files["v9"].write(PCAP_HDR)
    if "ipfix" in files:
        files["ipfix"].write(PCAP_HDR)
    per_src = {}
    tot = {"connections": 0, "records": 0, "datagrams": 0, "kinds": {}, "first_ms": None, "last_ms": None}
    v9_seq = 0
    ipfix_seq = 0
    pkts = byts = 0
    if a.jobs > 1:
        import multiprocessing as mp
        pool = mp.get_context("fork").Pool(a.jobs)
        results = pool.imap(gen_chunk, chunks)
    else:
        pool = None
        results = map(gen_chunk, chunks)
    for idx, conn_b, csv_b, v9_b, v9_at, ipfix_b, ipfix_at, src, st in results:
        files["conn"].write(conn_b)
        files["csv"].write(csv_b)
        buf = bytearray(v9_b)
        for off in v9_at:
            struct.pack_into(">I", buf, off, v9_seq)
            v9_seq = (v9_seq + 1) & 0xFFFFFFFF
        files["v9"].write(buf)
        if "ipfix" in files:
            buf = bytearray(ipfix_b)
            for off, cnt in ipfix_at:
                struct.pack_into(">I", buf, off, ipfix_seq)
                ipfix_seq = (ipfix_seq + cnt) & 0xFFFFFFFF
            files["ipfix"].write(buf)
        for ip, (r, pk, by) in src.items():
            t = per_src.get(ip)
            if t is None:
                per_src[ip] = [r, pk, by]
            else:
                t[0] += r
                t[1] += pk
                t[2] += by
        for k in ("connections", "records", "datagrams"):
            tot[k] += st[k]
        for k, v in st["kinds"].items():
            tot["kinds"][k] = tot["kinds"].get(k, 0) + v
        tot["first_ms"] = st["first_ms"] if tot["first_ms"] is None else min(tot["first_ms"], st["first_ms"])
        tot["last_ms"] = st["last_ms"] if tot["last_ms"] is None else max(tot["last_ms"], st["last_ms"])
        if a.progress:
            print(f"[gen] chunk {idx + 1}/{len(chunks)}  {tot['records']:,} records  {time.time() - t0:.0f} s",
                  file=sys.stderr, flush=True)
    if pool:
        pool.close()
        pool.join()
    for ip, (r, pk, by) in per_src.items():
        pkts += pk
        byts += by
    span_ms = max(1, tot["last_ms"] - tot["first_ms"])  # nfdump divides by the span in ms
    files["csv"].write(f"Summary\nflows,bytes,packets,avg_bps,avg_pps,avg_bpp\n"
                       f"{tot['records']},{byts},{pkts},{byts * 8000 // span_ms},{pkts * 1000 // span_ms},{byts // max(1, pkts)}\n".encode())
    closed = time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime(tot["last_ms"] // 1000 + 60))
    files["conn"].write(f"#close\t{closed}\n".encode())
    for f in files.values():
        f.close()
    for k, f in tmp.items():
        if os.path.exists(f):
            os.replace(f, os.path.join(a.out, names[k]))
    if a.connections_from_records and tot["records"] < a.records:
        print(f"[gen] warning: {tot['records']:,} records, fewer than --records {a.records:,}", file=sys.stderr)
    top = sorted(per_src.items(), key=lambda kv: -kv[1][2])[:50]
    meta = {
        "generator": "bench/gen_flows.py",
        "gen_version": GEN_VERSION,
        "seed": a.seed,
        "target_records": a.records if a.connections_from_records else None,
        "connections": tot["connections"],
        "records": tot["records"],
        "datagrams": tot["datagrams"],
        "packets": pkts,
        "bytes": byts,
        "source_ips": len(per_src),
        "first": tot["first_ms"] / 1000,
        "last": tot["last_ms"] / 1000,
        "connections_by_kind": dict(sorted(tot["kinds"].items())),
        "exporter": EXPORTER_IP,
        "files": {k: {"name": names[k], "bytes": os.path.getsize(os.path.join(a.out, names[k]))}
                  for k in names if k in files},
        "file_records": {"conn": tot["connections"], "csv": tot["records"], "v9": tot["records"],
                         "ipfix": tot["records"] if "ipfix" in files else 0},
        "jobs": a.jobs,
        "generation_seconds": round(time.time() - t0, 1),
        "top_sources_by_bytes": [{"ip": ip_str(ip), "records": r, "packets": pk, "bytes": by}
                                 for ip, (r, pk, by) in top],
    }
    with open(os.path.join(a.out, "meta.json.tmp"), "w") as f:
        json.dump(meta, f, indent=1)
    os.replace(os.path.join(a.out, "meta.json.tmp"), os.path.join(a.out, "meta.json"))
    print(json.dumps({k: meta[k] for k in ("connections", "records", "datagrams", "generation_seconds")}))


# ------------------------------------------------------------------ replay to a collector
def replay(a):
    """Sends the UDP payloads of a pcap (as written above) to 127.0.0.1:PORT at --pps."""
    with open(a.replay, "rb") as f:
        data = f.read()
    if data[:4] != PCAP_HDR[:4]:
        sys.exit("not a little-endian pcap written by gen_flows.py")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    dst = ("127.0.0.1", a.port)
    pos, n, t0 = 24, 0, time.perf_counter()
    burst = max(1, a.pps // 1000)  # send in 1 ms bursts
    send = sock.sendto
    size = len(data)
    while pos < size:
        caplen = struct.unpack_from("<I", data, pos + 8)[0]
        send(data[pos + 16 + 42:pos + 16 + caplen], dst)  # Ethernet 14 + IPv4 20 + UDP 8
        pos += 16 + caplen
        n += 1
        if n % burst == 0:
            ahead = n / a.pps - (time.perf_counter() - t0)
            if ahead > 0:
                time.sleep(ahead)
    el = time.perf_counter() - t0
    print(json.dumps({"datagrams": n, "seconds": round(el, 1), "pps": round(n / el)}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="output directory")
    ap.add_argument("--records", type=int, default=10_000_000,
                    help="at least this many unidirectional export records (default 10,000,000); the model gives "
                         "about 1.95 records per connection, so ceil(N / %.2f) connections are generated" % RECORDS_PER_CONN_MIN)
    ap.add_argument("--connections", type=int, help="number of connections (conn.log lines) instead of --records")
    ap.add_argument("--seed", type=int, default=20261127)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (output does not depend on it)")
    ap.add_argument("--no-ipfix", action="store_true", help="skip ipfix.pcap")
    ap.add_argument("--progress", action="store_true", help="a line per chunk on stderr")
    ap.add_argument("--replay", metavar="PCAP", help="send the export datagrams of PCAP to 127.0.0.1:--port")
    ap.add_argument("--port", type=int, default=2055)
    ap.add_argument("--pps", type=int, default=20_000, help="replay rate, datagrams per second")
    a = ap.parse_args()
    if a.replay:
        replay(a)
    elif a.out:
        a.connections_from_records = a.connections is None
        if a.connections is None:
            a.connections = -(-a.records * 100 // round(RECORDS_PER_CONN_MIN * 100))
        if a.connections < 1:
            ap.error("--connections must be positive")
        generate(a)
    else:
        ap.error("--out or --replay is needed")


if __name__ == "__main__":
    main()
