package kafka

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-sim/sluice/broker/kafkawire"
)

// Request and response headers (Kafka's RequestHeader v1/v2 and
// ResponseHeader v0/v1). The length prefix is not part of a frame: the
// sim.FrameLength32 framing adds and strips it.

// errMalformedResponse marks a response frame that cannot be parsed; the
// connection that carried it is no longer trustworthy and is closed.
var errMalformedResponse = errors.New("malformed response")

// appendRequestFrame appends req's header and body to dst: api key,
// version, correlation id, client id (a nullable non-compact string even in
// flexible versions, so that a broker can read it before knowing the
// version), an empty tag buffer when the version is flexible, then the body.
func appendRequestFrame(dst []byte, req kmsg.Request, correlationID int32, clientID string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(req.Key()))
	dst = binary.BigEndian.AppendUint16(dst, uint16(req.GetVersion()))
	dst = binary.BigEndian.AppendUint32(dst, uint32(correlationID))
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(clientID)))
	dst = append(dst, clientID...)
	if req.IsFlexible() {
		dst = append(dst, 0) // no tagged fields
	}
	return kafkawire.AppendRequest(dst, req)
}

// responseCorrelationID reads the correlation id that opens every response.
func responseCorrelationID(frame []byte) (int32, error) {
	if len(frame) < 4 {
		return 0, fmt.Errorf("response of %d bytes has no correlation id: %w", len(frame), errMalformedResponse)
	}
	return int32(binary.BigEndian.Uint32(frame)), nil
}

// responseBody strips the response header from frame. Flexible responses
// carry a tag buffer after the correlation id, except ApiVersions, whose
// response header stays v0 so that a client can read it whatever version
// it asked for.
func responseBody(frame []byte, key int16, flexible bool) ([]byte, error) {
	body := frame[4:]
	if !flexible || key == int16(kmsg.ApiVersions) {
		return body, nil
	}
	return skipTagBuffer(body)
}

// tagsMax bounds the tagged fields of a header we skip.
const tagsMax = 1 << 10

// skipTagBuffer skips a KIP-482 tag buffer: an unsigned varint count, then
// per tag an unsigned varint key, an unsigned varint size and size bytes.
func skipTagBuffer(b []byte) ([]byte, error) {
	count, n := binary.Uvarint(b)
	if n <= 0 || count > tagsMax {
		return nil, fmt.Errorf("response header tag count: %w", errMalformedResponse)
	}
	b = b[n:]
	for range count {
		_, n = binary.Uvarint(b)
		if n <= 0 {
			return nil, fmt.Errorf("response header tag key: %w", errMalformedResponse)
		}
		b = b[n:]
		size, n := binary.Uvarint(b)
		if n <= 0 || size > uint64(len(b)-n) {
			return nil, fmt.Errorf("response header tag size: %w", errMalformedResponse)
		}
		b = b[n+int(size):]
	}
	return b, nil
}

// parseResponse parses frame as the response to req, which carried
// correlationID.
func parseResponse(frame []byte, req kmsg.Request, correlationID int32) (kmsg.Response, error) {
	return parseResponseInto(frame, req, correlationID, nil)
}

// parseResponseInto is parseResponse decoding into into, a response of
// req's kind, when it is not nil.
func parseResponseInto(frame []byte, req kmsg.Request, correlationID int32, into kmsg.Response) (kmsg.Response, error) {
	got, err := responseCorrelationID(frame)
	if err != nil {
		return nil, err
	}
	if got != correlationID {
		return nil, fmt.Errorf("response correlation id %d, expected %d (%s v%d): %w",
			got, correlationID, keyName(req.Key()), req.GetVersion(), errMalformedResponse)
	}
	body, err := responseBody(frame, req.Key(), req.IsFlexible())
	if err != nil {
		return nil, err
	}
	resp := into
	if resp == nil {
		resp = req.ResponseKind()
	}
	resp.SetVersion(req.GetVersion())
	if err := readResponse(resp, body); err != nil {
		return nil, fmt.Errorf("parse %s v%d response: %w: %w", keyName(req.Key()), req.GetVersion(), errMalformedResponse, err)
	}
	return resp, nil
}

// readResponse decodes a response body. Fetch and produce answers, one
// per batch read or written, go through kafkawire's decoders, which
// reuse the slices of an answer decoded into again and point its strings
// into the frame (a frame is the handler's and never written again, see
// sim.ConnHandler), where kmsg copied every topic name.
func readResponse(resp kmsg.Response, body []byte) error {
	switch r := resp.(type) {
	case *kmsg.FetchResponse:
		return kafkawire.ReadFetchResponse(r, body)
	case *kmsg.ProduceResponse:
		return kafkawire.ReadProduceResponse(r, body)
	}
	return resp.ReadFrom(body)
}

// keyName names an API key for messages.
func keyName(key int16) string {
	// kmsg names every key it does not know "Unknown".
	if name := kmsg.NameForKey(key); name != "Unknown" {
		return name
	}
	return fmt.Sprintf("api key %d", key)
}
