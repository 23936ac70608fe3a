package injection

import (
	"bytes"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// Model holds the classifier's weights: one int8 per hashed feature bucket,
// scaled by Scale, plus a bias. It is produced by tools/train-injection and
// embedded as model.bin.
type Model struct {
	Flags   uint32  // feature set the weights were trained on
	Scale   float32 // weight of one quantisation step
	Bias    float32
	Weights []int8 // 1<<FeatureBits entries
}

// FeatureFlags is the feature set this code computes; a model trained on
// another set is rejected.
const FeatureFlags uint32 = featChar4 | featWord

var modelMagic = [8]byte{'S', 'L', 'U', 'I', 'N', 'J', '0', '1'}

// MarshalBinary encodes m: magic, flags, feature bits, scale, bias, the
// weights and a CRC-32 of everything before it, little-endian.
func (m *Model) MarshalBinary() ([]byte, error) {
	if len(m.Weights) != numBuckets {
		return nil, fmt.Errorf("injection: model has %d weights, want %d", len(m.Weights), numBuckets)
	}
	var b bytes.Buffer
	b.Write(modelMagic[:])
	binary.Write(&b, binary.LittleEndian, m.Flags)
	binary.Write(&b, binary.LittleEndian, uint32(FeatureBits))
	binary.Write(&b, binary.LittleEndian, math.Float32bits(m.Scale))
	binary.Write(&b, binary.LittleEndian, math.Float32bits(m.Bias))
	for _, w := range m.Weights {
		b.WriteByte(byte(w))
	}
	binary.Write(&b, binary.LittleEndian, crc32.ChecksumIEEE(b.Bytes()))
	return b.Bytes(), nil
}

// ParseModel decodes a model written by MarshalBinary and checks that it
// fits this code.
func ParseModel(data []byte) (*Model, error) {
	const header = 8 + 4*4
	if len(data) != header+numBuckets+4 || !bytes.Equal(data[:8], modelMagic[:]) {
		return nil, errors.New("injection: not a model file of this version")
	}
	body := data[:len(data)-4]
	if crc32.ChecksumIEEE(body) != binary.LittleEndian.Uint32(data[len(data)-4:]) {
		return nil, errors.New("injection: model checksum mismatch")
	}
	m := &Model{
		Flags: binary.LittleEndian.Uint32(data[8:]),
		Scale: math.Float32frombits(binary.LittleEndian.Uint32(data[16:])),
		Bias:  math.Float32frombits(binary.LittleEndian.Uint32(data[20:])),
	}
	if bits := binary.LittleEndian.Uint32(data[12:]); bits != FeatureBits {
		return nil, fmt.Errorf("injection: model has %d feature bits, want %d", bits, FeatureBits)
	}
	if m.Flags != FeatureFlags {
		return nil, fmt.Errorf("injection: model feature set %#x, want %#x", m.Flags, FeatureFlags)
	}
	if math.IsNaN(float64(m.Scale)) || math.IsInf(float64(m.Scale), 0) || math.IsNaN(float64(m.Bias)) || math.IsInf(float64(m.Bias), 0) {
		return nil, errors.New("injection: model has invalid scale or bias")
	}
	m.Weights = make([]int8, numBuckets)
	for i, c := range body[header:] {
		m.Weights[i] = int8(c)
	}
	return m, nil
}

//go:embed model.bin
var embeddedModel []byte
