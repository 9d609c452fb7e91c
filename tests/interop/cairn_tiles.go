// Checks a Cairn log over HTTP, as a C2SP tlog-tiles client would, with
// Go's own transparency code (golang.org/x/mod/sumdb/note and
// golang.org/x/mod/sumdb/tlog):
//
//	go run cairn_tiles.go BASE_URL VKEY
//
// BASE_URL is the log's tlog-tiles prefix (e.g. http://127.0.0.1:7480/logs/hr).
// The checkpoint at BASE_URL/checkpoint must verify with VKEY. Every hash
// tile is read through tlog.TileHashReader, which checks each tile against
// the checkpoint's tree before using it; tlog.TreeHash over them must equal
// the checkpoint's root. Every entry bundle is read, and each entry's
// tlog.RecordHash must equal the leaf hash the verified tiles hold for its
// index. Prints "ok SIZE".
//
// Go's tile paths carry the height (tile/8/L/N, tile/8/data/N); C2SP's do
// not (tile/L/N, tile/entries/N). Only that prefix is rewritten.
package main

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func get(url string) []byte {
	resp, err := http.Get(url)
	if err != nil {
		fail("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		fail("GET %s: %v", url, err)
	}
	if resp.StatusCode != 200 {
		fail("GET %s: HTTP %d: %s", url, resp.StatusCode, body)
	}
	return body
}

// c2spPath maps Go's tile path to C2SP tlog-tiles'.
func c2spPath(t tlog.Tile) string {
	p := t.Path()
	if strings.HasPrefix(p, "tile/8/data/") {
		return "tile/entries/" + strings.TrimPrefix(p, "tile/8/data/")
	}
	return "tile/" + strings.TrimPrefix(p, "tile/8/")
}

type tiles struct{ base string }

func (r tiles) Height() int { return 8 }

func (r tiles) ReadTiles(ts []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(ts))
	for i, t := range ts {
		out[i] = get(r.base + "/" + c2spPath(t))
	}
	return out, nil
}

func (r tiles) SaveTiles([]tlog.Tile, [][]byte) {}

// bundle splits a C2SP entry bundle: big-endian uint16 length, then bytes.
func bundle(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 2 {
			fail("entry bundle: truncated length")
		}
		n := int(b[0])<<8 | int(b[1])
		if len(b) < 2+n {
			fail("entry bundle: truncated entry")
		}
		out = append(out, b[2:2+n])
		b = b[2+n:]
	}
	return out
}

func main() {
	if len(os.Args) != 3 {
		fail("usage: cairn_tiles BASE_URL VKEY")
	}
	base := strings.TrimSuffix(os.Args[1], "/")
	verifier, err := note.NewVerifier(os.Args[2])
	if err != nil {
		fail("verifier key: %v", err)
	}
	n, err := note.Open(get(base+"/checkpoint"), note.VerifierList(verifier))
	if err != nil {
		fail("note.Open: %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 || lines[0] != verifier.Name() {
		fail("checkpoint origin %q is not the key's name %q", lines[0], verifier.Name())
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		fail("size: %v", err)
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		fail("root: %v", err)
	}
	var tree tlog.Tree
	tree.N = size
	copy(tree.Hash[:], root)
	reader := tlog.TileHashReader(tree, tiles{base})
	th, err := tlog.TreeHash(size, reader)
	if err != nil {
		fail("tlog.TreeHash over the tiles: %v", err)
	}
	if th != tree.Hash {
		fail("the tiles' tree hash %v is not the checkpoint's root %v", th, tree.Hash)
	}
	// Every entry, against the leaf hashes of the verified tiles.
	for start := int64(0); start < size; start += 256 {
		w := size - start
		if w > 256 {
			w = 256
		}
		t := tlog.Tile{H: 8, L: -1, N: start / 256, W: int(w)}
		entries := bundle(get(base + "/" + c2spPath(t)))
		if int64(len(entries)) != w {
			fail("bundle %d holds %d entries, not %d", t.N, len(entries), w)
		}
		indexes := make([]int64, w)
		for k := range indexes {
			indexes[k] = tlog.StoredHashIndex(0, start+int64(k))
		}
		leaves, err := reader.ReadHashes(indexes)
		if err != nil {
			fail("leaf hashes %d..: %v", start, err)
		}
		for k, e := range entries {
			if tlog.RecordHash(e) != leaves[k] {
				fail("entry %d does not hash to its leaf", start+int64(k))
			}
		}
	}
	fmt.Printf("ok %d\n", size)
}
