package contact_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/contact-sync/contact-sync/internal/contact"
)

// Limits of decodeUpdates, so that one fuzz input stays fast to check.
const (
	maxProgramBytes = 512
	maxUpdates      = 8
)

// Opcodes of the byte program that decodeUpdates reads. Each instruction is
// two bytes: the opcode (modulo opcodeCount) and an argument.
const (
	opNextUpdate = iota
	opName
	opSurname
	opEmail
	opPhone
	opEntityID
	opHasCustomerPortal
	opServicePointIDs
	opClearDynamicFields
	opSetDynamicField
	opcodeCount
)

var (
	testStrings      = []string{"Ada", "Grace <&>", "", "Émilie"}
	testEntityIDs    = []string{entityID, "3f2504e0-4f89-41d3-9a0c-0305e82c3301"}
	testDynamicKeys  = []string{"a", "k0", "k1", "tier"}
	testDynamicValue = []string{`1`, `"x"`, `null`, `{"a":[1,"<&>"]}`}
)

// decodeUpdates turns fuzz bytes into a sequence of partial updates. Every
// field value is one the contact API accepts, so each update also survives
// MarshalJSON and DecodeChanges.
func decodeUpdates(program []byte) []contact.Changes {
	if len(program) > maxProgramBytes {
		program = program[:maxProgramBytes]
	}

	updates := []contact.Changes{{}}
	for i := 0; i+1 < len(program); i += 2 {
		opcode, arg := int(program[i])%opcodeCount, int(program[i+1])
		update := &updates[len(updates)-1]
		switch opcode {
		case opNextUpdate:
			if len(updates) < maxUpdates {
				updates = append(updates, contact.Changes{})
			}
		case opName:
			update.Name = stringField(arg, testStrings)
		case opSurname:
			update.Surname = stringField(arg, testStrings)
		case opEmail:
			update.Email = stringField(arg, testStrings)
		case opPhone:
			update.Phone = stringField(arg, testStrings)
		case opEntityID:
			update.EntityID = stringField(arg, testEntityIDs)
		case opHasCustomerPortal:
			update.HasCustomerPortal = []contact.Field[bool]{contact.Cleared[bool](), contact.SetTo(true), contact.SetTo(false)}[arg%3]
		case opServicePointIDs:
			update.ServicePointIDs = servicePointField(arg)
		case opClearDynamicFields:
			update.ClearDynamicFields = true
		case opSetDynamicField:
			setDynamicField(update, testDynamicKeys[arg%len(testDynamicKeys)], testDynamicValue[(arg/len(testDynamicKeys))%len(testDynamicValue)])
		}
	}
	return updates
}

// stringField returns a cleared field for arguments divisible by five, and
// one of values otherwise.
func stringField(arg int, values []string) contact.Field[string] {
	if arg%5 == 0 {
		return contact.Cleared[string]()
	}
	return contact.SetTo(values[arg%len(values)])
}

func servicePointField(arg int) contact.Field[[]string] {
	switch arg % 4 {
	case 0:
		return contact.Cleared[[]string]()
	case 1:
		return contact.SetTo([]string{})
	case 2:
		return contact.SetTo([]string{servicePoint1})
	default:
		return contact.SetTo([]string{servicePoint2, servicePoint1})
	}
}

// setDynamicField sets a key as DecodeChanges does: each key once, at its
// first position.
func setDynamicField(update *contact.Changes, key, value string) {
	for i := range update.DynamicFields {
		if update.DynamicFields[i].Key == key {
			update.DynamicFields[i].Value = json.RawMessage(value)
			return
		}
	}
	update.DynamicFields = append(update.DynamicFields, dynamic(key, value))
}

// checkMergeProperties checks that applying the Parts of the merged updates
// has the effect of applying the updates one by one, that merging leaves
// its arguments unchanged, and that merging is associative in effect.
func checkMergeProperties(t *testing.T, updates []contact.Changes) {
	t.Helper()

	snapshots := make([]contact.Changes, len(updates))
	for i := range updates {
		snapshots[i] = updates[i].Clone()
	}
	merged := mergeAll(updates...)
	for i := range updates {
		if !reflect.DeepEqual(updates[i], snapshots[i]) {
			t.Fatalf("Merge changed update %d: %s, was %s", i, describe(updates[i:i+1]), describe(snapshots[i:i+1]))
		}
	}
	parts := merged.Parts()
	if len(parts) > 2 {
		t.Fatalf("merged update %s has %d parts, want at most 2", describe([]contact.Changes{merged}), len(parts))
	}
	if merged.IsEmpty() != (len(parts) == 0) {
		t.Fatalf("merged update %s has %d parts but IsEmpty returns %v", describe([]contact.Changes{merged}), len(parts), merged.IsEmpty())
	}

	for baseName, base := range map[string]contact.State{"empty contact": {}, "populated contact": populatedState(t)} {
		sequential := applySequentially(base, updates)
		if got := applyParts(base, &merged); !got.Equal(&sequential) {
			t.Fatalf("%s: updates %s one by one give %+v, their merge %s gives %+v",
				baseName, describe(updates), sequential, describe([]contact.Changes{merged}), got)
		}
		checkAssociative(t, base, updates, sequential)
	}

	checkRoundTrip(t, &merged)
}

// checkAssociative checks merge(merge(a, b), c) and merge(a, merge(b, c))
// against the sequential result, for every split of updates into a, b, c.
func checkAssociative(t *testing.T, base contact.State, updates []contact.Changes, sequential contact.State) {
	t.Helper()

	for i := 0; i <= len(updates); i++ {
		for j := i; j <= len(updates); j++ {
			a, b, c := mergeAll(updates[:i]...), mergeAll(updates[i:j]...), mergeAll(updates[j:]...)

			left := mergeAll(mergeAll(a, b), c)
			right := mergeAll(a, mergeAll(b, c))

			if got := applyParts(base, &left); !got.Equal(&sequential) {
				t.Fatalf("split %d/%d: merge(merge(a, b), c) of %s gives %+v, want %+v", i, j, describe(updates), got, sequential)
			}
			if got := applyParts(base, &right); !got.Equal(&sequential) {
				t.Fatalf("split %d/%d: merge(a, merge(b, c)) of %s gives %+v, want %+v", i, j, describe(updates), got, sequential)
			}
		}
	}
}

func applySequentially(base contact.State, updates []contact.Changes) contact.State {
	state := base.Clone()
	for i := range updates {
		state.Apply(&updates[i])
	}
	return state
}

func applyParts(base contact.State, changes *contact.Changes) contact.State {
	state := base.Clone()
	for _, part := range changes.Parts() {
		state.Apply(&part)
	}
	return state
}

// describe formats updates as their PUT bodies, for failure messages.
func describe(updates []contact.Changes) string {
	var descriptions []string
	for _, update := range updates {
		var bodies []string
		for _, part := range update.Parts() {
			body, err := part.MarshalJSON()
			if err != nil {
				body = []byte(err.Error())
			}
			bodies = append(bodies, string(body))
		}
		descriptions = append(descriptions, "["+strings.Join(bodies, " then ")+"]")
	}
	return strings.Join(descriptions, ", ")
}

func TestMergeMatchesSequentialApply(t *testing.T) {
	random := rand.New(rand.NewPCG(20250304, 1))

	for iteration := range 2000 {
		program := make([]byte, random.IntN(96))
		for i := range program {
			program[i] = byte(random.UintN(256))
		}

		t.Run(fmt.Sprint(iteration), func(t *testing.T) {
			checkMergeProperties(t, decodeUpdates(program))
		})
		if t.Failed() {
			t.Fatalf("program %v fails", program)
		}
	}
}

// FuzzMerge checks the merge rule on update sequences that the fuzzer
// builds as byte programs (see decodeUpdates).
func FuzzMerge(f *testing.F) {
	seeds := [][]byte{
		{},
		{opName, 1},
		{opName, 1, opNextUpdate, 0, opName, 0},
		{opName, 0, opNextUpdate, 0, opName, 2},
		{opSetDynamicField, 1, opNextUpdate, 0, opClearDynamicFields, 0, opNextUpdate, 0, opSetDynamicField, 2},
		{opClearDynamicFields, 0, opSetDynamicField, 1},
		{opSetDynamicField, 0, opSetDynamicField, 1, opNextUpdate, 0, opSetDynamicField, 5, opSetDynamicField, 3},
		{opServicePointIDs, 3, opNextUpdate, 0, opServicePointIDs, 0, opNextUpdate, 0, opServicePointIDs, 1},
		{opHasCustomerPortal, 1, opNextUpdate, 0, opHasCustomerPortal, 0, opEntityID, 1, opNextUpdate, 0, opEntityID, 5},
		{opEmail, 1, opPhone, 2, opSurname, 3, opNextUpdate, 0, opNextUpdate, 0, opClearDynamicFields, 0},
	}
	for _, seed := range seeds {
		f.Add(seed)
	}

	f.Fuzz(func(t *testing.T, program []byte) {
		checkMergeProperties(t, decodeUpdates(program))
	})
}
