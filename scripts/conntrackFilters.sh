#!/bin/sh
# Records which entries the real conntrack(8) shows for a set of filters, for
# test/processors/filter/conntrackParity.test.ts. Needs root and conntrack-tools (made with
# conntrack v1.4.7 on Linux 6.18). Everything happens in a private network namespace, deleted at
# the end: the entries are created with `conntrack -I` (NAT ones with --src-nat/--dst-nat, so the
# kernel's nf_nat sets them up and marks them), no packet is sent.
#   table.txt  conntrack -L -o extended,id: every entry
#   cases.txt  per filter: "$ ARGS", then the ids conntrack -L ARGS showed (sorted), or "error"
#   events.txt conntrack -E -o extended,id while the entries are created, marked (-U) and flushed
#   event-cases.txt  per filter: "$ ARGS", then "TYPE id" of each event conntrack -E ARGS showed
set -eu
out=${1:-test/fixtures/conntrackFilters}
ns=ctf-filt-$$
ip netns add "$ns"
tmp=$(mktemp -d)
listeners=''
# shellcheck disable=SC2086
cleanup() { [ -z "$listeners" ] || kill $listeners 2>/dev/null || true; rm -rf "$tmp"; [ -n "${KEEP_NS:-}" ] || ip netns del "$ns"; }
trap cleanup EXIT
# KEEP_NS=1 keeps the namespace (named on stderr) for trying filters by hand; delete it after.
[ -z "${KEEP_NS:-}" ] || echo "$ns" >&2
ct() { ip netns exec "$ns" conntrack "$@"; }
add() { ct -I -t 300 "$@" >/dev/null 2>&1 || { echo "conntrack -I $* failed" >&2; exit 1; }; }

# Event listeners, one per filter (the first unfiltered), started before anything happens.
k=0
while IFS= read -r args; do
  # shellcheck disable=SC2086
  ip netns exec "$ns" timeout 120 conntrack -E -o extended,id $args > "$tmp/$k" 2>/dev/null &
  listeners="$listeners $!"
  echo "$args" > "$tmp/$k.args"
  k=$((k + 1))
done <<'EVENT_CASES'

-e NEW
-e NEW,DESTROY
-e UPDATES
-e ALL -p udp
-e DESTROY --src-nat
-s 10.0.0.0/29 -p tcp
-f ipv6
-p tcp --state ESTABLISHED -e UPDATES
-e NEW --dst-nat 10.1.1.1
EVENT_CASES
sleep 1

add -p tcp -s 10.0.0.1 -d 198.51.100.1 --sport 1000 --dport 80 --state ESTABLISHED -u SEEN_REPLY,ASSURED
add -p tcp -s 10.0.0.2 -d 198.51.100.1 --sport 1001 --dport 443 --state SYN_SENT
add -p tcp -s 10.0.0.3 -d 10.0.0.2 --sport 1000 --dport 80 --src-nat 192.0.2.9:2000 --state ESTABLISHED -u SEEN_REPLY,ASSURED
add -p tcp -s 10.0.0.5 -d 198.51.100.1 --sport 1000 --dport 80 --dst-nat 10.1.1.1 --state ESTABLISHED -u SEEN_REPLY,ASSURED
add -p tcp -s 10.0.0.6 -d 198.51.100.1 --sport 1000 --dport 80 --dst-nat 10.1.1.1:8080 --state TIME_WAIT -u SEEN_REPLY,ASSURED
add -p tcp -s 10.0.0.7 -d 198.51.100.1 --sport 1000 --dport 80 --dst-nat 10.1.1.1 --src-nat 192.0.2.9 --state ESTABLISHED -u SEEN_REPLY
add -p tcp -s 10.0.0.8 -d 198.51.100.1 --sport 1000 --dport 80 --src-nat 10.0.0.8:3000 --state ESTABLISHED -u SEEN_REPLY,ASSURED
add -p tcp -s 10.0.0.11 -d 198.51.100.1 --sport 1000 --dport 22 --src-nat 10.0.0.11 --state ESTABLISHED -u SEEN_REPLY,ASSURED
add -p udp -s 10.0.0.4 -d 198.51.100.53 --sport 5000 --dport 53 -u SEEN_REPLY
add -p udp -s 10.0.0.4 -d 198.51.100.53 --sport 5001 --dport 53
add -p udp -s 172.16.0.9 -d 198.51.100.53 --sport 5002 --dport 53 --src-nat 192.0.2.9 -u SEEN_REPLY,ASSURED
add -p udp -s 10.0.0.4 -d 198.51.100.53 --sport 5003 --dport 53 -w 5
add -p icmp -s 10.0.0.4 -d 10.0.0.2 --icmp-type 8 --icmp-code 0 --icmp-id 77
add -p icmp -s 10.0.0.10 -d 198.51.100.1 --icmp-type 8 --icmp-code 0 --icmp-id 99 --src-nat 192.0.2.9 -u SEEN_REPLY
# A ping that passed nf_nat untranslated (NAT to its own address): marked as NAT done, tuples unchanged.
add -p icmp -s 10.0.0.12 -d 198.51.100.1 --icmp-type 8 --icmp-code 0 --icmp-id 5 --src-nat 10.0.0.12 -u SEEN_REPLY
add -p sctp -s 10.0.0.9 -d 10.0.0.2 --sport 1000 --dport 2905 --state ESTABLISHED --orig-vtag 1 --reply-vtag 2 -u SEEN_REPLY
add -p tcp -s 2001:db8::1 -d 2001:db8:1::2 --sport 1000 --dport 80 --state ESTABLISHED -u SEEN_REPLY,ASSURED
add -p udp -s 2001:db8::1 -d 2001:db8:1::2 --sport 1000 --dport 53 -w 5
add -p udp -s 2001:db8:ff::7 -d 2001:db8:1::2 --sport 1001 --dport 53 -u SEEN_REPLY

ct -L -o extended,id 2>/dev/null | sort > "$out/table.txt"

: > "$out/cases.txt"
while IFS= read -r args; do
  [ -z "$args" ] && continue
  echo "\$ $args" >> "$out/cases.txt"
  # shellcheck disable=SC2086
  if shown=$(ct -L -o id $args 2>/dev/null); then
    echo "$shown" | sed -n 's/.* id=\([0-9]*\)$/\1/p' | sort -n >> "$out/cases.txt"
  else
    echo error >> "$out/cases.txt"
  fi
done <<'CASES'
-p tcp
-p udp
-p 6
-p icmp
-p sctp
-f ipv4
-f ipv6
-s 10.0.0.3
-s 10.0.0.0/29
-s 10.0.0.0 --mask-src 255.255.255.248
-s 10.0.0.1 --mask-src 255.0.0.255
-d 198.51.100.1
-d 198.51.100.0/24
-s 2001:db8::/32
-s 2001:db8:: --mask-src ffff:ffff:ffff:ffff::
-d 2001:db8:1::2
-r 10.1.1.1
-q 192.0.2.9
-r 2001:db8:1::2
-p tcp --sport 1000
-p tcp --dport 80
-p tcp --orig-port-dst 80
-p tcp --reply-port-src 8080
-p tcp --reply-port-dst 2000
-p udp --dport 53
-p udp --sport 5003
-p tcp --state ESTABLISHED
-p tcp --state SYN_SENT
-p tcp --state TIME_WAIT
-p sctp --state ESTABLISHED
-u ASSURED
-u SEEN_REPLY
-u SEEN_REPLY,ASSURED
-u assured
-u EXPECTED
-w 5
-w 0
-p icmp --icmp-type 8
-p icmp --icmp-id 77
-p icmp --icmp-code 0
--src-nat
--src-nat 192.0.2.9
--src-nat 192.0.2.9:2000
--src-nat 10.0.0.8
--src-nat 10.0.0.8:3000
--src-nat 10.0.0.11
--dst-nat
--dst-nat 10.1.1.1
--dst-nat 10.1.1.1:8080
--src-nat --dst-nat
--any-nat
--any-nat 10.1.1.1
--any-nat 192.0.2.9
-p tcp --dport 80 --src-nat
-s 10.0.0.0/29 -u ASSURED --dst-nat
-f ipv4 -p udp -u SEEN_REPLY
-p tcp --state ESTABLISHED -d 198.51.100.1 --any-nat 10.1.1.1
-p tcp --any-nat 10.1.1.1
-w 0 --any-nat 10.1.1.1
-s 10.0.0.0/29 --any-nat 10.1.1.1
-p tcp --state ESTABLISHED -d 198.51.100.1
-p tcp --state ESTABLISHED --dst-nat 10.1.1.1
-f ipv6 -p udp -w 5
-p udp --dport 53 -s 10.0.0.4 -u SEEN_REPLY
-u BOGUS
-s 10.0.0.300
-d 10.0.0.2 -f ipv6
--mask-src 255.0.0.0
-p foo
-f ipv5
CASES

# UPDATE events (a new mark) for a few entries, then one DESTROY each.
for src in 10.0.0.1 10.0.0.5 10.0.0.7 172.16.0.9 2001:db8::1; do ct -U -s "$src" -m 7 >/dev/null 2>&1; done
ct -F >/dev/null 2>&1
sleep 1
# shellcheck disable=SC2086
kill $listeners
wait
listeners=''
cp "$tmp/0" "$out/events.txt"
: > "$out/event-cases.txt"
i=1
while [ "$i" -lt "$k" ]; do
  echo "\$ $(cat "$tmp/$i.args")" >> "$out/event-cases.txt"
  sed -n 's/^ *\[\([A-Z]*\)\].* id=\([0-9]*\).*$/\1 \2/p' "$tmp/$i" >> "$out/event-cases.txt"
  i=$((i + 1))
done
