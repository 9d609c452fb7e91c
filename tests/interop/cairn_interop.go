// Checks a Cairn log with Go's own transparency code,
// golang.org/x/mod/sumdb/note and golang.org/x/mod/sumdb/tlog:
//
//	go run cairn_interop.go VKEY ENTRIES_FILE < checkpoint-note
//
// ENTRIES_FILE holds one hex-encoded entry (leaf bytes) per line, in log
// order. The checkpoint must verify with VKEY, and tlog.TreeHash over the
// entries' record hashes must equal the checkpoint's root. Prints "ok".
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
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

func main() {
	if len(os.Args) != 3 {
		fail("usage: cairn_interop VKEY ENTRIES_FILE < note")
	}
	verifier, err := note.NewVerifier(os.Args[1])
	if err != nil {
		fail("verifier key: %v", err)
	}
	msg, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("reading note: %v", err)
	}
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		fail("note.Open: %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 {
		fail("checkpoint too short")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		fail("size: %v", err)
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		fail("root: %v", err)
	}

	f, err := os.Open(os.Args[2])
	if err != nil {
		fail("entries: %v", err)
	}
	var stored []tlog.Hash
	reader := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			out[i] = stored[x]
		}
		return out, nil
	})
	scan := bufio.NewScanner(f)
	scan.Buffer(make([]byte, 1<<20), 1<<20)
	var count int64
	for scan.Scan() {
		entry, err := hex.DecodeString(scan.Text())
		if err != nil {
			fail("entry %d: %v", count, err)
		}
		hashes, err := tlog.StoredHashes(count, entry, reader)
		if err != nil {
			fail("StoredHashes: %v", err)
		}
		stored = append(stored, hashes...)
		count++
	}
	if count != size {
		fail("got %d entries, checkpoint says %d", count, size)
	}
	th, err := tlog.TreeHash(size, reader)
	if err != nil {
		fail("TreeHash: %v", err)
	}
	if !bytes.Equal(th[:], root) {
		fail("tlog.TreeHash %x != checkpoint root %x", th[:], root)
	}
	fmt.Println("ok")
}
