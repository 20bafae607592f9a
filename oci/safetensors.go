package oci

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"sort"
)

// The safetensors format (https://github.com/huggingface/safetensors,
// README "Format"): an 8-byte little-endian unsigned header length N, N
// bytes of a UTF-8 JSON object that starts with '{' (maybe padded with
// spaces), then the data section. Each key but "__metadata__" (a map of
// strings) names a tensor: {"dtype": "F16", "shape": [..], "data_offsets":
// [BEGIN, END]}, offsets relative to the data section. Duplicate keys are
// not allowed, and the tensors must cover the data section exactly: no
// overlaps, no holes, end − begin = numel × dtype size. The reference
// parser refuses headers over 100,000,000 bytes.

// safetensorsBits is the width in bits of each dtype the reference
// implementation knows (safetensors/src/tensor.rs Dtype).
var safetensorsBits = map[string]uint64{
	"BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
	"U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
	"I16": 16, "U16": 16, "F16": 16, "BF16": 16,
	"I32": 32, "U32": 32, "F32": 32, "C64": 64,
	"F64": 64, "I64": 64, "U64": 64,
}

// safetensorsSummary is what a valid header says.
type safetensorsSummary struct {
	params  int64            // elements over all tensors
	bytesBy map[string]int64 // data bytes per dtype
}

// readSafetensorsHeader reads and checks the header of the safetensors
// file at p; see parseSafetensors.
func readSafetensorsHeader(p string) (int64, map[string]int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, nil, err
	}
	s, err := parseSafetensors(f, fi.Size())
	if err != nil {
		return 0, nil, err
	}
	return s.params, s.bytesBy, nil
}

// parseSafetensors checks the header of a safetensors file of size bytes
// read through r as the format says, and sums its tensors. It reads only
// the header, and never more than maxSafetensorsHeader bytes: a declared
// length over the cap or the file is refused before reading.
func parseSafetensors(r io.ReaderAt, size int64) (safetensorsSummary, error) {
	var s safetensorsSummary
	var lenBuf [8]byte
	if size < 8 {
		return s, fmt.Errorf("%d bytes: shorter than the 8-byte header length", size)
	}
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return s, err
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	switch {
	case n < 2:
		return s, fmt.Errorf("header length %d: too short for a JSON object", n)
	case n > maxSafetensorsHeader:
		return s, fmt.Errorf("header length %d: over the format's limit of %d bytes", n, maxSafetensorsHeader)
	case n > uint64(size-8):
		return s, fmt.Errorf("header length %d: longer than the %d bytes after it", n, size-8)
	}
	dataLen := uint64(size-8) - n
	// Decoded as a stream: memory grows with the tensor list, not with
	// the header's bytes.
	tensors, err := decodeSafetensorsHeader(io.NewSectionReader(r, 8, int64(n)))
	if err != nil {
		return s, err
	}
	s.bytesBy = map[string]int64{}
	for _, t := range tensors {
		s.params += int64(t.numel)
		s.bytesBy[t.dtype] += int64(t.end - t.begin)
	}
	// The tensors must tile [0, dataLen): sorted by offset, each starts
	// where the one before ended.
	sort.Slice(tensors, func(i, j int) bool {
		if tensors[i].begin != tensors[j].begin {
			return tensors[i].begin < tensors[j].begin
		}
		return tensors[i].end < tensors[j].end
	})
	var at uint64
	for _, t := range tensors {
		switch {
		case t.begin < at:
			return s, fmt.Errorf("tensor %q: data_offsets [%d, %d] overlap the tensor before it, which ends at %d", t.name, t.begin, t.end, at)
		case t.begin > at:
			return s, fmt.Errorf("tensor %q: data_offsets [%d, %d] leave a hole after byte %d of the data", t.name, t.begin, t.end, at)
		case t.end > dataLen:
			return s, fmt.Errorf("tensor %q: data_offsets [%d, %d] end past the %d bytes of data in the file", t.name, t.begin, t.end, dataLen)
		}
		at = t.end
	}
	if at != dataLen {
		return s, fmt.Errorf("the tensors cover %d bytes but the file holds %d bytes of data", at, dataLen)
	}
	if s.params < 0 {
		return s, errors.New("more elements than an int64 counts")
	}
	return s, nil
}

type safetensor struct {
	name       string
	dtype      string
	numel      uint64
	begin, end uint64
}

// decodeSafetensorsHeader decodes the JSON header, refusing duplicate
// keys: encoding/json would keep the last one silently, so the top level
// is walked token by token. Padding after the object may be any JSON
// whitespace (the format pads with spaces).
func decodeSafetensorsHeader(header io.Reader) ([]safetensor, error) {
	br := bufio.NewReaderSize(header, 64<<10)
	if b, err := br.Peek(1); err != nil || b[0] != '{' {
		return nil, errors.New("the header does not start with '{'")
	}
	dec := json.NewDecoder(br)
	dec.UseNumber()
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("header JSON: %w", err)
	}
	seen := map[string]bool{}
	var out []safetensor
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("header JSON: %w", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("header JSON: key %v is not a string", tok)
		}
		if seen[name] {
			return nil, fmt.Errorf("tensor %q is named twice", name)
		}
		seen[name] = true
		if name == "__metadata__" {
			var meta map[string]string
			if err := dec.Decode(&meta); err != nil {
				return nil, fmt.Errorf("__metadata__: want an object of strings: %w", err)
			}
			continue
		}
		var raw struct {
			Dtype       *string  `json:"dtype"`
			Shape       []uint64 `json:"shape"`
			DataOffsets []uint64 `json:"data_offsets"`
		}
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		t, err := checkTensor(name, raw.Dtype, raw.Shape, raw.DataOffsets)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("header JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("header JSON: more after the object")
	}
	return out, nil
}

// checkTensor checks one tensor entry: a known dtype, a shape and two
// offsets whose distance is the tensor's size in bytes.
func checkTensor(name string, dtype *string, shape, offsets []uint64) (safetensor, error) {
	t := safetensor{name: name}
	if dtype == nil || shape == nil || offsets == nil {
		return t, fmt.Errorf("tensor %q: want dtype, shape and data_offsets", name)
	}
	width, ok := safetensorsBits[*dtype]
	if !ok {
		return t, fmt.Errorf("tensor %q: unknown dtype %q", name, *dtype)
	}
	t.dtype = *dtype
	if len(offsets) != 2 || offsets[1] < offsets[0] {
		return t, fmt.Errorf("tensor %q: data_offsets %v: want [BEGIN, END] with BEGIN ≤ END", name, offsets)
	}
	t.begin, t.end = offsets[0], offsets[1]
	t.numel = 1
	for _, d := range shape {
		hi, lo := bits.Mul64(t.numel, d)
		if hi != 0 || lo > 1<<62 {
			return t, fmt.Errorf("tensor %q: shape %v has more elements than can be stored", name, shape)
		}
		t.numel = lo
	}
	hi, nbits := bits.Mul64(t.numel, width)
	if hi != 0 || nbits%8 != 0 {
		return t, fmt.Errorf("tensor %q: shape %v of %s is not a whole number of bytes", name, shape, t.dtype)
	}
	if want := nbits / 8; t.end-t.begin != want {
		return t, fmt.Errorf("tensor %q: data_offsets [%d, %d] hold %d bytes, but shape %v of %s needs %d", name, t.begin, t.end, t.end-t.begin, shape, t.dtype, want)
	}
	return t, nil
}
