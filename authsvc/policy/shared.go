package policy

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"hash"
	"runtime"
	"sync"
	"unique"
	"weak"

	"github.com/jwtgate/jwtgate/authsvc/keys"
)

// Many policies often list the same keys (one IdP for a whole cluster). Parsed
// keys and their indexed sets are immutable, so policies that list the same key
// material share one copy: with 10,000 policies that is most of their memory.
// The tables hold weak pointers, so a key nobody uses any more is collected.

type weakTable[T any] struct{ m sync.Map } // [32]byte -> weak.Pointer[T]

func (t *weakTable[T]) get(id [32]byte) *T {
	if v, ok := t.m.Load(id); ok {
		return v.(weak.Pointer[T]).Value()
	}
	return nil
}

func (t *weakTable[T]) put(id [32]byte, v *T) *T {
	wp := weak.Make(v)
	for {
		old, loaded := t.m.LoadOrStore(id, wp)
		if !loaded {
			break
		}
		if o := old.(weak.Pointer[T]).Value(); o != nil {
			return o
		}
		if t.m.CompareAndSwap(id, old, wp) {
			break
		}
	}
	runtime.AddCleanup(v, func(id [32]byte) { t.m.CompareAndDelete(id, wp) }, id)
	return v
}

// intern returns the one copy of s that policies share: the names many
// policies repeat (their namespace's Secrets, issuers, audiences) are held
// once, not once per policy as the decoded objects held them.
func intern(s string) string { return unique.Make(s).Value() }

type parsedKeys struct{ keys []keys.Key }

var (
	parsedTable weakTable[parsedKeys]
	setTable    weakTable[keys.Set]
)

// parseVerificationShared is keys.ParseVerification, shared between policies
// that reference the same bytes with the same encoding. The policy must hold the
// returned value (the table's pointer is weak). Callers must not modify the
// keys' slices; compileJWT clones Algs before narrowing them.
func parseVerificationShared(data []byte, enc keys.Encoding) (*parsedKeys, error) {
	h := sha256.New()
	h.Write([]byte(enc))
	h.Write([]byte{0})
	h.Write(data)
	var id [32]byte
	h.Sum(id[:0])
	if pk := parsedTable.get(id); pk != nil {
		return pk, nil
	}
	ks, err := keys.ParseVerification(data, enc)
	if err != nil {
		return nil, err
	}
	return parsedTable.put(id, &parsedKeys{keys: ks}), nil
}

// sharedSet returns an indexed set of ks, shared with every policy whose keys
// are the same (the same key values, in the same order, with the same
// algorithms).
func sharedSet(ks []keys.Key) *keys.Set {
	h := sha256.New()
	var n [8]byte
	for _, k := range ks {
		h.Write([]byte(k.ID))
		h.Write([]byte{0})
		// The key's identity: its thumbprint ID is not enough (HMAC secrets
		// have none), so the raw key is hashed too.
		writeKey(h, k.Key)
		for _, a := range k.Algs {
			h.Write([]byte(a.String()))
			h.Write([]byte{1})
		}
		if k.AnyKID {
			h.Write([]byte{2})
		}
		binary.BigEndian.PutUint64(n[:], uint64(len(k.Algs)))
		h.Write(n[:])
	}
	var id [32]byte
	h.Sum(id[:0])
	if s := setTable.get(id); s != nil {
		return s
	}
	return setTable.put(id, keys.NewSet(ks))
}

// writeKey writes a verification key's value to h.
func writeKey(h hash.Hash, k any) {
	if b, ok := k.([]byte); ok {
		h.Write([]byte("hmac:"))
		h.Write(b)
		return
	}
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		// Unknown key type: a unique value, so such keys are never shared.
		_, _ = fmt.Fprintf(h, "%p", k)
		return
	}
	h.Write(der)
}
