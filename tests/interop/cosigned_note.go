// How Go's golang.org/x/mod/sumdb/note treats a Cairn checkpoint that a
// Cairn witness cosigned (C2SP tlog-cosignature, key type 0x04):
//
//	go run cosigned_note.go LOG_VKEY WITNESS_VKEY < cosigned-note
//
// Prints, one per line:
//
//	log-verified <n>        signatures note.Open verified with the log key
//	unverified <n>          signature lines it left unverified (cosignatures)
//	witness-vkey <result>   what note.NewVerifier says of the witness key
//	witness-as-ed25519 <r>  note.Open with the witness public key re-typed
//	                        as a plain Ed25519 (0x01) verifier
package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

// plainVkey re-types a vkey's public key as algorithm 0x01, with the key ID
// that type implies: SHA-256(name || 0x0A || 0x01 || key)[:4].
func plainVkey(vkey string) string {
	parts := strings.SplitN(vkey, "+", 3)
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 33 {
		fail("witness vkey: %v", err)
	}
	key := append([]byte{1}, raw[1:]...)
	h := sha256.Sum256(append([]byte(parts[0]+"\n"), key...))
	return fmt.Sprintf("%s+%08x+%s", parts[0], binary.BigEndian.Uint32(h[:4]), base64.StdEncoding.EncodeToString(key))
}

func main() {
	if len(os.Args) != 3 {
		fail("usage: cosigned_note LOG_VKEY WITNESS_VKEY < note")
	}
	logV, err := note.NewVerifier(os.Args[1])
	if err != nil {
		fail("log vkey: %v", err)
	}
	msg, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("reading note: %v", err)
	}
	n, err := note.Open(msg, note.VerifierList(logV))
	if err != nil {
		fail("note.Open with the log key: %v", err)
	}
	fmt.Printf("log-verified %d\n", len(n.Sigs))
	fmt.Printf("unverified %d\n", len(n.UnverifiedSigs))
	if _, err := note.NewVerifier(os.Args[2]); err != nil {
		fmt.Printf("witness-vkey rejected: %v\n", err)
	} else {
		fmt.Printf("witness-vkey accepted\n")
	}
	plain, err := note.NewVerifier(plainVkey(os.Args[2]))
	if err != nil {
		fail("plain witness vkey: %v", err)
	}
	m, err := note.Open(msg, note.VerifierList(logV, plain))
	if err != nil {
		fmt.Printf("witness-as-ed25519 error: %v\n", err)
	} else {
		fmt.Printf("witness-as-ed25519 verified %d unverified %d\n", len(m.Sigs), len(m.UnverifiedSigs))
	}
}
