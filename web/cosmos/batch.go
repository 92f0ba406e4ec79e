package cosmos

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/web"
)

// Bounds of a batch or bulk request.
const (
	maxBatchOps  = 100     // operations in one request, as Cosmos DB allows
	maxBatchBody = 4 << 20 // the request body
)

// batchOp is one operation of a transactional batch or a bulk request, as
// the SDKs send it.
type batchOp struct {
	OperationType string          `json:"operationType"`
	ID            string          `json:"id"`
	PartitionKey  string          `json:"partitionKey"` // a JSON array of one value, as the header
	IfMatch       string          `json:"ifMatch"`
	IfNoneMatch   string          `json:"ifNoneMatch"`
	ResourceBody  json.RawMessage `json:"resourceBody"`
}

// batchResult is the outcome of one operation, as Cosmos DB reports it.
type batchResult struct {
	StatusCode    int             `json:"statusCode"`
	RequestCharge float64         `json:"requestCharge"`
	ETag          string          `json:"eTag,omitempty"`
	ResourceBody  json.RawMessage `json:"resourceBody,omitempty"`
	Message       string          `json:"message,omitempty"`
}

// batch is POST .../docs with x-ms-cosmos-is-batch-request. With
// x-ms-cosmos-batch-atomic (items.batch, ExecuteTransactionalBatch) the
// operations share the partition key value of the request's header and
// apply all or none: on failure the answer is 207 with the failing
// operation's status and 424 for every other. Without it (a bulk request)
// each operation applies on its own, and the answer holds each one's
// status (207 when any failed); with x-ms-cosmos-batch-continue-on-error
// false, the operations after a failure are not run (424).
func (s *Server) batch(q *request) error {
	c, err := s.container(q)
	if err != nil {
		return err
	}
	body, err := readBody(q, maxBatchBody)
	if err != nil {
		return err
	}
	var ops []batchOp
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&ops); err != nil {
		return fmt.Errorf("%w: batch body: %v", replica.ErrInvalid, err)
	}
	if len(ops) == 0 || len(ops) > maxBatchOps {
		return fmt.Errorf("%w: %d operations in a batch: want 1..%d", replica.ErrInvalid, len(ops), maxBatchOps)
	}
	var results []batchResult
	if isTrue(q.r.Header.Get("x-ms-cosmos-batch-atomic")) {
		if results, err = s.atomicBatch(q, c, ops); err != nil {
			return err
		}
	} else {
		stop := q.r.Header.Get("x-ms-cosmos-batch-continue-on-error") == "false"
		results = make([]batchResult, len(ops))
		failed := false
		for i := range ops {
			if failed && stop {
				results[i] = batchResult{StatusCode: http.StatusFailedDependency, RequestCharge: 1}
				continue
			}
			results[i] = s.bulkOp(q, c, &ops[i])
			failed = failed || results[i].StatusCode >= 400
		}
	}
	status := http.StatusOK
	for _, r := range results {
		if r.StatusCode >= 400 {
			status = http.StatusMultiStatus
		}
	}
	b, err := json.Marshal(results)
	if err != nil {
		return fmt.Errorf("encode batch results: %w", err)
	}
	s.writeBody(q, status, b)
	return nil
}

// bulkOp runs one operation of a bulk request on its own.
func (s *Server) bulkOp(q *request, c replica.Container, op *batchOp) batchResult {
	var pk *string
	if op.PartitionKey != "" {
		v, ok, err := partitionKeyHeader(op.PartitionKey)
		if err != nil {
			return failed(err)
		}
		if ok {
			pk = &v
		}
	}
	eop, err := s.toBatchOp(q, c, op, pk, conditionTimeout)
	if err != nil {
		return failed(err)
	}
	res, err := s.e.Batch(q.ctx, c.Name, pk, []edge.BatchOp{eop})
	if be := (*edge.BatchError)(nil); errors.As(err, &be) {
		err = be.Err
	}
	if err != nil {
		return failed(opError(op, err))
	}
	return s.succeeded(q, op, &res[0])
}

// atomicBatch runs a transactional batch: the partition key value is the
// request's; on an edge, one local transaction.
func (s *Server) atomicBatch(q *request, c replica.Container, ops []batchOp) ([]batchResult, error) {
	pk, ok, err := partitionKeyHeader(q.r.Header.Get("x-ms-documentdb-partitionkey"))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: a transactional batch needs x-ms-documentdb-partitionkey", replica.ErrInvalid)
	}
	// The patch conditions of one batch share one time limit: they run
	// inside its write transaction.
	conds := 0
	for i := range ops {
		if ops[i].OperationType == "Patch" && bytes.Contains(ops[i].ResourceBody, []byte(`"condition"`)) {
			conds++
		}
	}
	limit := conditionTimeout / time.Duration(max(conds, 1))
	eops := make([]edge.BatchOp, len(ops))
	for i := range ops {
		if ops[i].PartitionKey != "" {
			v, ok, err := partitionKeyHeader(ops[i].PartitionKey)
			if err == nil && ok && v != pk {
				err = fmt.Errorf("%w: operation %d has partition key value %q, the batch %q", replica.ErrInvalid, i, v, pk)
			}
			if err != nil {
				return dependent(len(ops), i, failed(err)), nil
			}
		}
		if eops[i], err = s.toBatchOp(q, c, &ops[i], &pk, limit); err != nil {
			return dependent(len(ops), i, failed(err)), nil
		}
	}
	res, err := s.e.Batch(q.ctx, c.Name, &pk, eops)
	var be *edge.BatchError
	if errors.As(err, &be) && be.Index >= 0 && be.Index < len(ops) {
		return dependent(len(ops), be.Index, failed(opError(&ops[be.Index], be.Err))), nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]batchResult, len(ops))
	for i := range ops {
		out[i] = s.succeeded(q, &ops[i], &res[i])
	}
	return out, nil
}

// toBatchOp turns an SDK operation into the node's; with pk, a document
// must have that partition key value. A patch's condition is evaluated for
// at most limit.
func (s *Server) toBatchOp(q *request, c replica.Container, op *batchOp, pk *string, limit time.Duration) (edge.BatchOp, error) {
	if op.IfNoneMatch != "" {
		return edge.BatchOp{}, fmt.Errorf("%w: ifNoneMatch in a batch operation", errNotSupported)
	}
	var body []byte
	switch op.OperationType {
	case "Create", "Upsert", "Replace":
		if len(op.ResourceBody) == 0 {
			return edge.BatchOp{}, fmt.Errorf("%w: a %s operation without a resourceBody", replica.ErrInvalid, op.OperationType)
		}
		if len(op.ResourceBody) > maxBody {
			return edge.BatchOp{}, fmt.Errorf("%w: document of %d bytes, limit %d", replica.ErrTooLarge, len(op.ResourceBody), maxBody)
		}
		var err error
		if body, err = cleanBody(op.ResourceBody); err != nil {
			return edge.BatchOp{}, err
		}
		if pk != nil {
			if err := checkBodyPK(c, body, *pk); err != nil {
				return edge.BatchOp{}, err
			}
		}
	case "Read", "Delete", "Patch":
		if err := replica.ValidateID(op.ID); err != nil {
			return edge.BatchOp{}, err
		}
	default:
		return edge.BatchOp{}, fmt.Errorf("%w: operationType %q: want Create, Upsert, Replace, Read, Delete or Patch", replica.ErrInvalid, op.OperationType)
	}
	switch op.OperationType {
	case "Create":
		return edge.BatchOp{Kind: replica.WriteCreate, Body: body}, nil
	case "Upsert":
		return edge.BatchOp{Kind: replica.WriteUpsert, Body: body, IfMatch: op.IfMatch}, nil
	case "Replace":
		cond := op.IfMatch
		if cond == "" {
			cond = "*" // the item must exist
		}
		return edge.BatchOp{Kind: replica.WriteUpsert, ID: op.ID, Body: body, IfMatch: cond}, nil
	case "Read":
		return edge.BatchOp{Kind: edge.BatchRead, ID: op.ID}, nil
	case "Delete":
		return edge.BatchOp{Kind: replica.WriteDelete, ID: op.ID, IfMatch: op.IfMatch}, nil
	}
	pb, err := parsePatch(op.ResourceBody)
	if err != nil {
		return edge.BatchOp{}, err
	}
	ctx := q.ctx
	return edge.BatchOp{Kind: replica.WriteUpsert, ID: op.ID, IfMatch: op.IfMatch, Update: func(cur *replica.Item) ([]byte, error) {
		return patchDoc(ctx, c, cur, &pb, limit)
	}}, nil
}

// opError is an operation's error as Cosmos DB reports it: a replace
// without ifMatch of a missing item is not found.
func opError(op *batchOp, err error) error {
	if op.OperationType == "Replace" && op.IfMatch == "" && errors.Is(err, replica.ErrPreconditionFailed) {
		return fmt.Errorf("%w: item %q", replica.ErrNotFound, op.ID)
	}
	return err
}

// succeeded is the result of an operation that applied: the item, unless
// the request asked for no content on writes (Prefer: return=minimal).
func (s *Server) succeeded(q *request, op *batchOp, res *edge.BatchResult) batchResult {
	r := batchResult{StatusCode: http.StatusOK, RequestCharge: 1}
	switch {
	case op.OperationType == "Delete":
		r.StatusCode = http.StatusNoContent
		return r
	case op.OperationType == "Create" || res.Created:
		r.StatusCode = http.StatusCreated
	}
	r.ETag = res.Item.ETag()
	if op.OperationType == "Read" || !preferMinimal(q.r.Header) {
		r.ResourceBody = appendItem(nil, &res.Item, q.res.db, q.res.coll)
	}
	return r
}

// failed is the result of an operation that failed with err.
func failed(err error) batchResult {
	status, body := web.ErrorStatus(err)
	return batchResult{StatusCode: status, RequestCharge: 1, Message: body.Message}
}

// dependent is the results of a transactional batch that failed at
// operation i: its own result, and 424 for every other, none applied.
func dependent(n, i int, r batchResult) []batchResult {
	out := make([]batchResult, n)
	for j := range out {
		out[j] = batchResult{StatusCode: http.StatusFailedDependency, RequestCharge: 1,
			Message: "not applied: operation " + strconv.Itoa(i) + " of the batch failed"}
	}
	out[i] = r
	return out
}
