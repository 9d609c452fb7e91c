#!/usr/bin/env bash
# The distributed engines the object-storage tests use (issue 19), real
# and on loopback: a single-node Ceph RGW (one mon, one memstore OSD, one
# radosgw; no mgr) as the S3-compatible store, and etcd for leases.
#
#   scripts/services.sh start [DIR]   install (Debian) if needed, start, wait until ready
#   scripts/services.sh stop  [DIR]   stop what `start` started in DIR
#   scripts/services.sh env   [DIR]   print the variables the tests read
#   scripts/services.sh running [DIR] exit 0 if both answer
#
# DIR (default: $HOME/.cache/cairn-services) holds the configuration, data,
# logs, pids and `env`. Ports: RGW 127.0.0.1:$CAIRN_RGW_PORT (7780), etcd
# client 127.0.0.1:$CAIRN_ETCD_PORT (7779), mon 7781, etcd peer 7782.
# Facts behind the settings: ../shared/notes/object-storage.md.
set -euo pipefail

cmd=${1:-start}
DIR=${2:-${CAIRN_SERVICES_DIR:-$HOME/.cache/cairn-services}}
RGW_PORT=${CAIRN_RGW_PORT:-7780}
ETCD_PORT=${CAIRN_ETCD_PORT:-7779}
MON_PORT=${CAIRN_MON_PORT:-7781}
ETCD_PEER=${CAIRN_ETCD_PEER_PORT:-7782}
ACCESS_KEY=cairntest
SECRET_KEY=cairntestsecret
BUCKET=cairn-test

say() { echo "services: $*" >&2; }
die() { say "$*"; exit 1; }

install() {
    local need=()
    for b in radosgw ceph-mon ceph-osd etcd; do
        command -v "$b" >/dev/null 2>&1 || need+=("$b")
    done
    [ ${#need[@]} -eq 0 ] && return 0
    say "installing radosgw ceph-mon ceph-osd etcd-server etcd-client (Debian)"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        radosgw ceph-mon ceph-osd etcd-server etcd-client >/dev/null \
        || die "apt-get install failed"
}

# Waits until "$@" succeeds, up to $1 seconds.
wait_for() {
    local secs=$1; shift
    for _ in $(seq 1 $((secs * 5))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    return 1
}

conf() {
    cat > "$DIR/ceph.conf" <<EOF
[global]
fsid = $(cat "$DIR/fsid")
mon_host = v2:127.0.0.1:$MON_PORT
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
ms_mon_client_mode = crc
ms_client_mode = crc
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
# The mon refuses to start below 5% free disk by default; its data is tiny
# (the OSD is in memory), so a nearly full build disk must not stop it.
mon_data_avail_crit = 1
mon_data_avail_warn = 2
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
mon_max_pg_per_osd = 1000
osd_crush_chooseleaf_type = 0
run_dir = $DIR/run
log_file = $DIR/log/\$name.log
admin_socket = $DIR/run/\$name.asok
mon_data = $DIR/mon
osd_data = $DIR/osd
osd_objectstore = memstore
# In memory, and only as written: room for the benchmarks (~200 MB per
# 300k appends) as well as the tests.
memstore_device_bytes = 8589934592
osd_max_object_name_len = 460
osd_max_object_namespace_len = 64
mon_warn_on_pool_no_redundancy = false

[client.rgw.a]
rgw_frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw_data = $DIR/rgw
EOF
}

running() {
    [ -f "$DIR/env" ] && curl -fsS "http://127.0.0.1:$RGW_PORT" >/dev/null 2>&1 \
        && etcdctl --endpoints "127.0.0.1:$ETCD_PORT" endpoint health >/dev/null 2>&1
}

# The tests' bucket (a signed PUT; "already owned by you" is fine).
make_bucket() {
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT \
        --aws-sigv4 "aws:amz:us-east-1:s3" --user "$ACCESS_KEY:$SECRET_KEY" \
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
        "http://127.0.0.1:$RGW_PORT/$BUCKET")
    case "$code" in
        200|409) ;;
        *) die "creating bucket $BUCKET answered HTTP $code" ;;
    esac
    # Anyone may read its objects (the logs in it are tlog-tiles endpoints
    # that Go's sumdb/tlog reads directly); only the test user writes.
    local policy='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::'"$BUCKET"'/*"]}]}'
    code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT --data "$policy" \
        --aws-sigv4 "aws:amz:us-east-1:s3" --user "$ACCESS_KEY:$SECRET_KEY" \
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
        "http://127.0.0.1:$RGW_PORT/$BUCKET?policy=")
    case "$code" in
        200|204) ;;
        *) die "setting the read policy of bucket $BUCKET answered HTTP $code" ;;
    esac
}

start() {
    install
    if running; then
        make_bucket
        say "already running ($DIR)"
        return 0
    fi
    stop >/dev/null 2>&1 || true
    rm -rf "$DIR"
    mkdir -p "$DIR"/{run,log,mon,osd,rgw,etcd}
    local t0=$SECONDS
    # etcd first: it starts in under a second.
    etcd --name cairn --data-dir "$DIR/etcd" \
        --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" \
        --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
        --initial-cluster "cairn=http://127.0.0.1:$ETCD_PEER" \
        --initial-cluster-state new >"$DIR/log/etcd.log" 2>&1 &
    echo $! >"$DIR/etcd.pid"
    # Ceph: mon, then the OSD, then radosgw.
    uuidgen 2>/dev/null >"$DIR/fsid" || python3 -c 'import uuid; print(uuid.uuid4())' >"$DIR/fsid"
    conf
    local C=(-c "$DIR/ceph.conf")
    monmaptool --create --add a "127.0.0.1:$MON_PORT" --fsid "$(cat "$DIR/fsid")" "$DIR/monmap" >/dev/null
    ceph-mon "${C[@]}" --mkfs -i a --monmap "$DIR/monmap" --mon-data "$DIR/mon" >/dev/null
    ceph-mon "${C[@]}" -i a --mon-data "$DIR/mon" --pid-file "$DIR/run/mon.pid"
    wait_for 30 ceph "${C[@]}" -s --connect-timeout 2 || die "ceph-mon did not come up (log: $DIR/log/mon.a.log)"
    local osd_uuid
    osd_uuid=$(uuidgen 2>/dev/null || python3 -c 'import uuid; print(uuid.uuid4())')
    local id
    id=$(ceph "${C[@]}" osd new "$osd_uuid")
    ceph-osd "${C[@]}" -i "$id" --mkfs --osd-uuid "$osd_uuid" --osd-data "$DIR/osd" >/dev/null 2>&1 \
        || die "ceph-osd --mkfs failed (log: $DIR/log/osd.$id.log)"
    ceph-osd "${C[@]}" -i "$id" --osd-data "$DIR/osd" --pid-file "$DIR/run/osd.pid"
    wait_for 60 bash -c "ceph -c '$DIR/ceph.conf' osd stat | grep -q '1 up'" \
        || die "the OSD did not come up (log: $DIR/log/osd.$id.log)"
    radosgw "${C[@]}" -n client.rgw.a --pid-file "$DIR/run/rgw.pid"
    wait_for 90 curl -fsS "http://127.0.0.1:$RGW_PORT" \
        || die "radosgw did not answer on 127.0.0.1:$RGW_PORT (log: $DIR/log/client.rgw.a.log)"
    radosgw-admin "${C[@]}" user create --uid=cairn --display-name=cairn \
        --access-key="$ACCESS_KEY" --secret="$SECRET_KEY" >/dev/null
    wait_for 10 etcdctl --endpoints "127.0.0.1:$ETCD_PORT" endpoint health \
        || die "etcd did not come up (log: $DIR/log/etcd.log)"
    make_bucket
    cat >"$DIR/env" <<EOF
CAIRN_S3_ENDPOINT=http://127.0.0.1:$RGW_PORT
CAIRN_S3_BUCKET=$BUCKET
AWS_ACCESS_KEY_ID=$ACCESS_KEY
AWS_SECRET_ACCESS_KEY=$SECRET_KEY
AWS_REGION=us-east-1
CAIRN_ETCD_ENDPOINT=http://127.0.0.1:$ETCD_PORT
EOF
    say "Ceph RGW on 127.0.0.1:$RGW_PORT and etcd on 127.0.0.1:$ETCD_PORT in $((SECONDS - t0)) s ($DIR)"
}

stop() {
    for p in "$DIR/run/rgw.pid" "$DIR/run/osd.pid" "$DIR/run/mon.pid" "$DIR/etcd.pid"; do
        [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null || true
    done
    sleep 0.5
    for p in "$DIR/run/rgw.pid" "$DIR/run/osd.pid" "$DIR/run/mon.pid" "$DIR/etcd.pid"; do
        [ -f "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null || true
    done
    return 0
}

case "$cmd" in
    start) start ;;
    stop) stop; say "stopped ($DIR)" ;;
    env) cat "$DIR/env" ;;
    running) running ;;
    *) die "usage: scripts/services.sh start|stop|env|running [DIR]" ;;
esac
