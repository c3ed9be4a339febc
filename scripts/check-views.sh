#!/usr/bin/env bash
# Renders the dm-server views in headless Chromium.
#
#   scripts/check-views.sh [OUT_DIR]
#
# Builds dm-server, starts it on 127.0.0.1:0 with the sample catalog and a
# throw-away state directory, sends one poll, one status report and one
# machine inventory with curl, and takes screenshots of the device list and
# of the device page: OUT_DIR/index.png and OUT_DIR/device.png (default
# OUT_DIR: target/check-views). Needs curl and chromium (Debian packages).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
. "$root/scripts/lib/dm-server.sh"
out="${1:-$root/target/check-views}"
mkdir -p "$out"
for tool in curl chromium; do
    command -v "$tool" >/dev/null || { echo "check-views: $tool is not installed" >&2; exit 1; }
done
cargo build -q -p dm-server --manifest-path "$root/Cargo.toml"
work="$(mktemp -d)"
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
start_dm_server check-views "$root/config/sample-catalog" 50
ep="$url/devicemgmt/server.aspx"
dev="6F1C2B0A-93D4-4E5B-8C21-7A0B3C9D1E42"
hdr=(-H "X-Device-UUID: $dev" -H "X-Device-client-version: 1.0" -H "Content-Type: text/xml; charset=utf-8")
curl -sf "${hdr[@]}" -H "X-Device-Action: Poll" --data-binary @- "$ep" >/dev/null <<XML
<DevicePoll xmlns="http://www.microsoft.com/DeviceManagement.xsd">
  <Identification><ID>$dev</ID><DeviceName>KIOSK-017</DeviceName><UserName>operator</UserName>
  <Platform>Linux</Platform><Processor>ARM</Processor><codePage>65001</codePage>
  <NetworkAdapter><IPAddress>10.20.30.41</IPAddress><IPSubnet>255.255.255.0</IPSubnet><MAC>00:1A:2B:3C:4D:5E</MAC></NetworkAdapter>
  </Identification>
</DevicePoll>
XML
curl -sf "${hdr[@]}" -H "X-Device-Action: Status" --data-binary @- "$ep" >/dev/null <<XML
<Status><StatusMessage packageID="DEMO-APP" messageID="11030" timestamp="2025-01-15 09:31:00"><Parameter name="ReportID">r-1</Parameter></StatusMessage>
<StatusMessage packageID="DEMO-APP" messageID="11031" timestamp="2025-01-15 09:31:02"><Parameter name="SHA256">abc</Parameter><Parameter name="ReportID">r-2</Parameter></StatusMessage>
<StatusMessage packageID="DEMO-APP" messageID="11035" timestamp="2025-01-15 09:31:03"><Parameter name="ExitCode">0</Parameter><Parameter name="ReportID">r-3</Parameter></StatusMessage>
<StatusMessage packageID="DEMO-TOOLS" messageID="11032" timestamp="2025-01-15 09:31:04"><Parameter name="ErrorCode">404</Parameter><Parameter name="ReportID">r-4</Parameter></StatusMessage></Status>
XML
curl -sf "${hdr[@]}" -H "X-Device-Action: Report" -H "X-Device-ReportType: MachineInventory" --data-binary @- "$ep" >/dev/null <<XML
<Inventory type="machine"><InventoryItem name="Device_System"><Property name="PlatformType">Example Kiosk K2</Property><Property name="NumberOfProcessors">4</Property></InventoryItem></Inventory>
XML
shot() {
    chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
        --disable-component-update --no-first-run --disable-sync \
        --user-data-dir="$(mktemp -d -p "$work")" --window-size=1200,1400 \
        --screenshot="$1" "$2" >/dev/null 2>&1
    [ -s "$1" ] || { echo "check-views: no screenshot $1" >&2; exit 1; }
}
curl -sf "$url/" | grep -q "KIOSK-017" || { echo "check-views: the device list lacks the device" >&2; exit 1; }
shot "$out/index.png" "$url/"
shot "$out/device.png" "$url/devices/$dev"
echo "check-views: wrote $out/index.png and $out/device.png"
