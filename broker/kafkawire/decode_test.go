package kafkawire

import (
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDecodersMatchKmsg: for random fetch requests and responses of every
// version, plain or carrying tagged fields, forgotten topics, a rack or
// aborted transactions, the decoders fill a fresh message exactly as kmsg
// does (a truncated one fails as kmsg's does), a message decoded into one
// reused again and again encodes back to the bytes it came from, and the
// fast path itself (not the fallback) reads the plain version 12 ones.
func TestDecodersMatchKmsg(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	reusedReq, reusedResp := kmsg.NewPtrFetchRequest(), kmsg.NewPtrFetchResponse()
	fast := map[string]int{}
	for i := 0; i < 3000; i++ {
		plain := rng.IntN(3) > 0
		req := randomFetchRequest(rng, int16(4+rng.IntN(9)), plain)
		if plain && rng.IntN(4) > 0 {
			req.Rack, req.ForgottenTopics = "", nil // as the broker's clients send them
		}
		body := req.AppendTo(nil)
		if readFetchRequest12(requestOf(req.Version), body) && req.Version == 12 {
			fast["request"]++
		}
		want, got := requestOf(req.Version), requestOf(req.Version)
		wantErr, gotErr := want.UnsafeReadFrom(body), ReadFetchRequest(got, body)
		if !reflect.DeepEqual(got, want) || (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("request v%d: decoded %+v (%v), kmsg decodes %+v (%v)", req.Version, got, gotErr, want, wantErr)
		}
		ResetFetchRequest(reusedReq)
		reusedReq.Version = req.Version
		if err := ReadFetchRequest(reusedReq, body); err != nil {
			t.Fatalf("request v%d into a reused one: %v", req.Version, err)
		}
		compare(t, "request decoded into a reused one", reusedReq.AppendTo(nil), body)
		if cut := body[:rng.IntN(len(body))]; ReadFetchRequest(requestOf(req.Version), cut) == nil {
			t.Fatalf("request v%d cut to %d of %d bytes decoded", req.Version, len(cut), len(body))
		}

		resp := randomFetchResponse(rng, int16(4+rng.IntN(9)), plain)
		if plain && rng.IntN(4) > 0 {
			for ti := range resp.Topics {
				for pi := range resp.Topics[ti].Partitions {
					resp.Topics[ti].Partitions[pi].AbortedTransactions = nil
				}
			}
		}
		body = resp.AppendTo(nil)
		if readFetchResponse12(responseOf(resp.Version), body) && resp.Version == 12 {
			fast["response"]++
		}
		wantResp, gotResp := responseOf(resp.Version), responseOf(resp.Version)
		wantErr, gotErr = wantResp.ReadFrom(body), ReadFetchResponse(gotResp, body)
		if !reflect.DeepEqual(gotResp, wantResp) || (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("response v%d: decoded %+v (%v), kmsg decodes %+v (%v)", resp.Version, gotResp, gotErr, wantResp, wantErr)
		}
		ResetFetchResponse(reusedResp)
		reusedResp.Version = resp.Version
		if err := ReadFetchResponse(reusedResp, body); err != nil {
			t.Fatalf("response v%d into a reused one: %v", resp.Version, err)
		}
		compare(t, "response decoded into a reused one", reusedResp.AppendTo(nil), body)
		if cut := body[:rng.IntN(len(body))]; ReadFetchResponse(responseOf(resp.Version), cut) == nil {
			t.Fatalf("response v%d cut to %d of %d bytes decoded", resp.Version, len(cut), len(body))
		}
	}
	for _, kind := range []string{"request", "response"} {
		if fast[kind] < 100 {
			t.Errorf("only %d plain version 12 fetch %ss took the fast decoder", fast[kind], kind)
		}
	}
}

func requestOf(version int16) *kmsg.FetchRequest {
	r := kmsg.NewPtrFetchRequest()
	r.Version = version
	return r
}

func responseOf(version int16) *kmsg.FetchResponse {
	r := kmsg.NewPtrFetchResponse()
	r.Version = version
	return r
}
