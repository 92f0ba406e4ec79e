// Package querytest holds the query cases and their data set, shared by the
// evaluator's tests and the stores' (which run them over real replicas).
package querytest

import (
	_ "embed"
	"strings"
)

// Products is the data set of the cases, a JSON array of documents.
//
//go:embed products.json
var Products []byte

// WantJSON returns a case's expected result with "$pN" replaced by document pN
// of byID.
func (c Case) WantJSON(byID map[string][]byte) string {
	want := c.Want
	for i := 10; i >= 1; i-- { // $p10 before $p1
		id := "p" + string(rune('0'+i%10))
		if i == 10 {
			id = "p10"
		}
		want = strings.ReplaceAll(want, "$"+id, string(byID[id]))
	}
	return want
}

// The query cases run over products.json, read in id order (p1,
// p10, p2, ..., p9) as the stores read a container. Expected results are
// written from Cosmos DB's documented semantics; the pages cited are under
// https://learn.microsoft.com/azure/cosmos-db/nosql/query/ (named by their
// last path segment below). "$pN" in a want stands for document pN.

// Case is one query and its expected result.
type Case struct {
	Name   string
	Query  string
	Params string // JSON array of {"name","value"}; "" for none
	Want   string
}

// Cases are the query cases.
var Cases = []Case{
	// SELECT, FROM and projections
	{"value ids", `SELECT VALUE c.id FROM c`, "", `["p1","p10","p2","p3","p4","p5","p6","p7","p8","p9"]`},
	{"projection by id", `SELECT c.id FROM c WHERE c.id = "p1"`, "", `[{"id":"p1"}]`},
	{"star", `SELECT * FROM c WHERE c.id = 'p3'`, "", `[$p3]`},
	{"lower-case keywords", `select value c.name from c where c.category = "tools"`, "", `["Anvil","bolt","Hammer"]`},
	// select: a projected property that is undefined is left out of the
	// object, which is still returned (select#remarks).
	{"undefined projection gives empty object", `SELECT c.name FROM c WHERE c.category = "tools"`, "", `[{"name":"Anvil"},{"name":"bolt"},{},{"name":"Hammer"}]`},
	{"aliases and nested paths", `SELECT c.name AS n, c.owner.city AS city FROM c WHERE c.category = "office"`, "", `[{"n":"Eraser"},{"n":"Folder","city":null},{"n":"Glue","city":"Oslo"}]`},
	{"nested path name", `SELECT c.owner.name FROM c WHERE c.id IN ("p1","p4")`, "", `[{"name":"Ann"},{"name":"Cid"}]`},
	{"bracket property", `SELECT c["name"] FROM c WHERE c.id = "p2"`, "", `[{"name":"bolt"}]`},
	{"bracket then dot", `SELECT VALUE c.owner["address"].zip FROM c WHERE IS_DEFINED(c.owner.address)`, "", `["0150"]`},
	{"array index in nested object", `SELECT VALUE c.owner.address.lines[1] FROM c WHERE c.id = "p7"`, "", `["Floor 2"]`},
	{"array index over all, non-arrays undefined", `SELECT VALUE c.tags[0] FROM c`, "", `["heavy","paper","metal","small","paper","metal","metal"]`},
	{"index past the end is undefined", `SELECT VALUE c.dims[5] FROM c WHERE c.id = "p9"`, "", `[]`},
	{"string, null and missing values", `SELECT c.id, c.price FROM c WHERE c.id IN ("p4","p5","p6")`, "", `[{"id":"p4","price":"120"},{"id":"p5","price":null},{"id":"p6"}]`},
	{"select value object literal", `SELECT VALUE {"n": c.name, "t": c.tags} FROM c WHERE c.id = "p2"`, "", `[{"n":"bolt","t":["metal","small"]}]`},
	{"select value array literal", `SELECT VALUE [c.id, c.price] FROM c WHERE c.id = "p1"`, "", `[["p1",25]]`},
	{"projection of a missing nested object", `SELECT c.id, c.owner.name AS owner FROM c WHERE c.category = "office"`, "", `[{"id":"p5"},{"id":"p6","owner":"Bob"},{"id":"p7","owner":"Dee"}]`},
	{"no FROM", `SELECT 1 AS one`, "", `[{"one":1}]`},
	{"no FROM value", `SELECT VALUE "hello"`, "", `["hello"]`},
	// select: an expression without an alias is named $1, $2, ...
	{"unnamed expression", `SELECT c.id, c.price + 1 FROM c WHERE c.id = "p1"`, "", `[{"id":"p1","$1":26}]`},
	{"two unnamed expressions", `SELECT c.price + 1, c.qty + 1 FROM c WHERE c.id = "p1"`, "", `[{"$1":26,"$2":4}]`},
	{"container alias", `SELECT p.name FROM products p WHERE p.id = "p3"`, "", `[{"name":"Chair"}]`},
	{"container alias with AS", `SELECT p.name FROM products AS p WHERE p.id = "p3"`, "", `[{"name":"Chair"}]`},
	{"value of the alias", `SELECT VALUE c FROM c WHERE c.id = "p5"`, "", `[$p5]`},
	{"alias as a property", `SELECT c FROM c WHERE c.id = "p5"`, "", `[{"c":$p5}]`},
	{"value of an object", `SELECT VALUE c.owner FROM c WHERE c.id = "p6"`, "", `[{"name":"Bob","city":null}]`},
	{"select value of undefined returns nothing", `SELECT VALUE c.missing FROM c`, "", `[]`},
	{"select of undefined returns empty objects", `SELECT c.missing FROM c WHERE c.id = "p1"`, "", `[{}]`},
	{"FROM a path with alias", `SELECT * FROM c.owner o WHERE o.city = "Bergen"`, "", `[{"name":"Bob","city":"Bergen"},{"name":"Ann","city":"Bergen"}]`},
	{"comment", "SELECT VALUE c.id -- the id\nFROM c WHERE c.id = \"p1\"", "", `["p1"]`},
	{"single-quoted string", `SELECT VALUE c.id FROM c WHERE c.name = 'desk'`, "", `["p4"]`},
	{"string escapes", `SELECT VALUE "a\"b\u00e9\n"`, "", `["a\"bé\n"]`},
	{"property named like a keyword", `SELECT VALUE c.value FROM c WHERE c.id = "p1"`, "", `[]`},

	// TOP, OFFSET LIMIT
	{"top", `SELECT TOP 3 VALUE c.id FROM c`, "", `["p1","p10","p2"]`},
	{"top 0", `SELECT TOP 0 VALUE c.id FROM c`, "", `[]`},
	{"top parameter", `SELECT TOP @n VALUE c.id FROM c`, `[{"name":"@n","value":2}]`, `["p1","p10"]`},
	{"offset limit without order", `SELECT VALUE c.id FROM c OFFSET 8 LIMIT 5`, "", `["p8","p9"]`},
	{"offset past the end", `SELECT VALUE c.id FROM c OFFSET 20 LIMIT 5`, "", `[]`},
	{"limit 0", `SELECT VALUE c.id FROM c OFFSET 0 LIMIT 0`, "", `[]`},

	// Comparisons. equality-comparison-operators: comparing values of
	// different types, or two arrays or objects with a range operator, is
	// undefined, and a WHERE that is not true drops the row.
	{"greater than skips other types", `SELECT VALUE c.id FROM c WHERE c.price > 10`, "", `["p1","p10","p3","p9"]`},
	{"string range", `SELECT VALUE c.id FROM c WHERE c.price > "100"`, "", `["p4"]`},
	{"equality", `SELECT VALUE c.id FROM c WHERE c.price = 12`, "", `["p10","p9"]`},
	{"not equal is undefined across types", `SELECT VALUE c.id FROM c WHERE c.price != 12`, "", `["p1","p2","p3","p7"]`},
	{"not equal with <>", `SELECT VALUE c.id FROM c WHERE c.price <> 12`, "", `["p1","p2","p3","p7"]`},
	{"equals null", `SELECT VALUE c.id FROM c WHERE c.price = null`, "", `["p5"]`},
	{"not equal null only compares nulls", `SELECT VALUE c.id FROM c WHERE c.price != null`, "", `[]`},
	{"equals undefined is never true", `SELECT VALUE c.id FROM c WHERE c.price = undefined`, "", `[]`},
	{"NOT of undefined stays undefined", `SELECT VALUE c.id FROM c WHERE NOT (c.price > 10)`, "", `["p2","p7"]`},
	{"range with AND", `SELECT VALUE c.id FROM c WHERE c.price >= 12 AND c.price <= 25`, "", `["p1","p10","p9"]`},
	{"between", `SELECT VALUE c.id FROM c WHERE c.price BETWEEN 12 AND 25`, "", `["p1","p10","p9"]`},
	{"not between", `SELECT VALUE c.id FROM c WHERE c.price NOT BETWEEN 12 AND 25`, "", `["p2","p3","p7"]`},
	{"string between", `SELECT VALUE c.id FROM c WHERE c.name BETWEEN "C" AND "F"`, "", `["p3","p5"]`},
	{"boolean equality", `SELECT VALUE c.id FROM c WHERE c.active = true`, "", `["p1","p10","p2","p4","p7"]`},
	{"boolean property as filter", `SELECT VALUE c.id FROM c WHERE c.active`, "", `["p1","p10","p2","p4","p7"]`},
	{"NOT of a boolean property", `SELECT VALUE c.id FROM c WHERE NOT c.active`, "", `["p3","p9"]`},
	{"OR", `SELECT VALUE c.id FROM c WHERE c.active = false OR c.price = null`, "", `["p3","p5","p9"]`},
	// logical-operators: true OR undefined is true, false OR undefined
	// is undefined.
	{"OR with undefined", `SELECT VALUE c.id FROM c WHERE c.active OR c.qty > 50`, "", `["p1","p10","p2","p4","p7"]`},
	{"AND", `SELECT VALUE c.id FROM c WHERE c.active AND c.qty > 2`, "", `["p1","p10","p2"]`},
	{"AND binds tighter than OR", `SELECT VALUE c.id FROM c WHERE c.id = "p1" OR c.id = "p2" AND c.qty > 1000`, "", `["p1"]`},
	{"string order is by code point", `SELECT VALUE c.id FROM c WHERE c.name > "a"`, "", `["p10","p2","p4"]`},
	{"string less than", `SELECT VALUE c.id FROM c WHERE c.name < "B"`, "", `["p1"]`},
	{"array equality", `SELECT VALUE c.id FROM c WHERE c.tags = ["metal"]`, "", `["p8"]`},
	{"array range comparison is undefined", `SELECT VALUE c.id FROM c WHERE c.tags > []`, "", `[]`},
	{"object equality", `SELECT VALUE c.id FROM c WHERE c.owner = {"name":"Cid"}`, "", `["p4"]`},
	{"object equality with two properties", `SELECT VALUE c.id FROM c WHERE c.owner = {"name":"Ann","city":"Oslo"}`, "", `["p1","p3"]`},
	{"fractional number", `SELECT VALUE c.id FROM c WHERE c.qty = 4.5`, "", `["p10"]`},
	{"negative number", `SELECT VALUE c.id FROM c WHERE c.qty < 0`, "", `["p7"]`},
	{"null category", `SELECT VALUE c.id FROM c WHERE c.category = null`, "", `["p10"]`},
	{"IN", `SELECT VALUE c.id FROM c WHERE c.category IN ("office", "furniture")`, "", `["p3","p4","p5","p6","p7"]`},
	// IN is a chain of = joined by OR: null IN ("a") is undefined, so is
	// its NOT, and the row is dropped.
	{"NOT IN", `SELECT VALUE c.id FROM c WHERE c.category NOT IN ("office", "furniture")`, "", `["p1","p2","p8","p9"]`},
	{"IN with mixed types", `SELECT VALUE c.id FROM c WHERE c.price IN (12, "120")`, "", `["p10","p4","p9"]`},
	{"IN of a missing property", `SELECT VALUE c.id FROM c WHERE c.missing IN (1,2)`, "", `[]`},
	{"NOT IN of a missing property", `SELECT VALUE c.id FROM c WHERE NOT (c.missing IN (1,2))`, "", `[]`},
	{"self equality drops missing values", `SELECT VALUE c.id FROM c WHERE c.owner.city = c.owner.city`, "", `["p1","p10","p2","p3","p6","p7","p9"]`},
	{"nested object property", `SELECT VALUE c.id FROM c WHERE c.owner.address.zip = "0150"`, "", `["p7"]`},
	{"array equality in projection", `SELECT VALUE c.price2 = [1, 2] FROM c WHERE c.id = "p10"`, "", `[true]`},
	{"true AND undefined", `SELECT VALUE true AND undefined`, "", `[]`},
	{"false AND undefined", `SELECT VALUE false AND undefined`, "", `[false]`},
	{"true OR undefined", `SELECT VALUE true OR undefined`, "", `[true]`},
	{"NOT undefined", `SELECT VALUE NOT undefined`, "", `[]`},
	{"AND of a non-boolean", `SELECT VALUE true AND 1`, "", `[]`},

	// Arithmetic and ||: operands of the wrong type give undefined, as a
	// comparison of mismatched types does (equality-comparison-operators);
	// division by zero is undefined here (JSON has no infinity).
	{"multiply properties", `SELECT VALUE c.price * c.qty FROM c WHERE c.category = "tools"`, "", `[75,50,60]`},
	{"arithmetic on a string is undefined", `SELECT c.id, c.price * 2 AS double FROM c WHERE c.id IN ("p4","p7")`, "", `[{"id":"p4"},{"id":"p7","double":7.5}]`},
	{"precedence", `SELECT VALUE 1 + 2 * 3`, "", `[7]`},
	{"parentheses", `SELECT VALUE (1 + 2) * 3`, "", `[9]`},
	{"modulo", `SELECT VALUE 7 % 3`, "", `[1]`},
	{"division", `SELECT VALUE 7 / 2`, "", `[3.5]`},
	{"division by zero is undefined", `SELECT VALUE 1 / 0`, "", `[]`},
	{"unary minus", `SELECT VALUE -c.qty FROM c WHERE c.id = "p7"`, "", `[1]`},
	{"plus on a string is undefined", `SELECT VALUE "a" + 1`, "", `[]`},
	{"concatenation", `SELECT VALUE c.name || "!" FROM c WHERE c.category = "furniture"`, "", `["Chair!","desk!"]`},
	{"concatenation with undefined", `SELECT VALUE c.name || c.missing FROM c WHERE c.id = "p1"`, "", `[]`},
	{"concatenation with a number", `SELECT VALUE "x" || 1`, "", `[]`},
	{"left associative minus", `SELECT VALUE 10 - 2 - 3`, "", `[5]`},
	{"sum of products", `SELECT VALUE 2 * 3 + 4 * 5`, "", `[26]`},
	{"exponent literal", `SELECT VALUE 1.5e2`, "", `[150]`},
	{"ternary", `SELECT VALUE c.id FROM c WHERE c.qty > 3 ? true : false`, "", `["p10","p2","p5","p6","p8","p9"]`},
	// The ?? operator returns its left side when it is defined, null
	// included.
	{"coalesce", `SELECT VALUE c.price ?? "none" FROM c WHERE c.category = "office"`, "", `[null,"none",3.75]`},

	// DISTINCT
	{"distinct value", `SELECT DISTINCT VALUE c.category FROM c`, "", `["tools",null,"furniture","office"]`},
	{"distinct objects", `SELECT DISTINCT c.category FROM c`, "", `[{"category":"tools"},{"category":null},{"category":"furniture"},{"category":"office"}]`},
	{"distinct drops undefined", `SELECT DISTINCT VALUE c.owner.name FROM c`, "", `["Ann","eve","Bob","Cid","Dee"]`},
	{"distinct with null", `SELECT DISTINCT VALUE c.owner.city FROM c`, "", `["Oslo","Bergen",null]`},
	{"distinct ordered", `SELECT DISTINCT VALUE c.owner.city FROM c ORDER BY c.owner.city`, "", `[null,"Bergen","Oslo"]`},

	// ORDER BY. order-by: mixed types sort undefined, null, booleans,
	// numbers, strings (ascending); items whose key is undefined are
	// returned too.
	{"order over mixed types", `SELECT VALUE c.id FROM c ORDER BY c.price`, "", `["p6","p5","p8","p2","p7","p10","p9","p1","p3","p4"]`},
	{"order over mixed types descending", `SELECT VALUE c.id FROM c ORDER BY c.price DESC`, "", `["p4","p3","p1","p10","p9","p7","p2","p8","p5","p6"]`},
	{"order by strings", `SELECT VALUE c.name FROM c ORDER BY c.name`, "", `["Anvil","Chair","Eraser","Folder","Glue","Hammer","bolt","desk","ink"]`},
	{"order by two keys", `SELECT VALUE c.id FROM c ORDER BY c.category, c.id DESC`, "", `["p10","p4","p3","p7","p6","p5","p9","p8","p2","p1"]`},
	{"order by number descending", `SELECT VALUE c.id FROM c ORDER BY c.qty DESC`, "", `["p2","p5","p6","p8","p9","p10","p1","p4","p3","p7"]`},
	{"order by ASC keyword", `SELECT VALUE c.id FROM c ORDER BY c.qty ASC`, "", `["p7","p3","p4","p1","p10","p9","p8","p6","p5","p2"]`},
	{"top with order", `SELECT TOP 3 VALUE c.id FROM c ORDER BY c.qty`, "", `["p7","p3","p4"]`},
	{"offset limit with order", `SELECT VALUE c.id FROM c ORDER BY c.qty OFFSET 2 LIMIT 3`, "", `["p4","p1","p10"]`},
	{"order by booleans with null and missing", `SELECT VALUE c.id FROM c ORDER BY c.active, c.id`, "", `["p6","p8","p5","p3","p9","p1","p10","p2","p4","p7"]`},
	{"order by nested descending", `SELECT c.id FROM c ORDER BY c.owner.name DESC OFFSET 0 LIMIT 2`, "", `[{"id":"p10"},{"id":"p7"}]`},
	{"order with filter", `SELECT VALUE c.name FROM c WHERE c.category = "tools" ORDER BY c.price DESC`, "", `["Anvil","Hammer","bolt"]`},

	// Type checking functions: false for undefined (is-defined, is-null).
	{"IS_DEFINED false", `SELECT VALUE c.id FROM c WHERE IS_DEFINED(c.price) = false`, "", `["p6"]`},
	{"NOT IS_DEFINED", `SELECT VALUE c.id FROM c WHERE NOT IS_DEFINED(c.owner)`, "", `["p5","p8"]`},
	{"IS_NULL", `SELECT VALUE c.id FROM c WHERE IS_NULL(c.price)`, "", `["p5"]`},
	{"IS_NULL of undefined is false", `SELECT VALUE c.id FROM c WHERE IS_NULL(c.missing)`, "", `[]`},
	{"IS_NUMBER", `SELECT VALUE c.id FROM c WHERE IS_NUMBER(c.price)`, "", `["p1","p10","p2","p3","p7","p9"]`},
	{"IS_STRING", `SELECT VALUE c.id FROM c WHERE IS_STRING(c.price)`, "", `["p4"]`},
	{"IS_BOOL", `SELECT VALUE c.id FROM c WHERE IS_BOOL(c.price)`, "", `["p8"]`},
	{"IS_BOOL of active", `SELECT VALUE c.id FROM c WHERE IS_BOOL(c.active)`, "", `["p1","p10","p2","p3","p4","p7","p9"]`},
	{"IS_ARRAY", `SELECT VALUE c.id FROM c WHERE IS_ARRAY(c.tags)`, "", `["p1","p10","p2","p3","p5","p6","p8","p9"]`},
	{"IS_OBJECT", `SELECT VALUE c.id FROM c WHERE IS_OBJECT(c.owner)`, "", `["p1","p10","p2","p3","p4","p6","p7","p9"]`},
	{"IS_DEFINED in projection", `SELECT VALUE IS_DEFINED(c.owner.address) FROM c WHERE c.category = "office"`, "", `[false,false,true]`},

	// Array functions (array-contains, array-length).
	{"ARRAY_CONTAINS", `SELECT VALUE c.id FROM c WHERE ARRAY_CONTAINS(c.tags, "small")`, "", `["p2","p5","p6"]`},
	{"NOT ARRAY_CONTAINS skips non-arrays", `SELECT VALUE c.id FROM c WHERE NOT ARRAY_CONTAINS(c.tags, "metal")`, "", `["p10","p3","p5","p6"]`},
	{"ARRAY_CONTAINS partial match", `SELECT VALUE c.id FROM c WHERE ARRAY_CONTAINS(c.items, {"sku": "b"}, true)`, "", `["p8"]`},
	{"ARRAY_CONTAINS needs a full match by default", `SELECT VALUE c.id FROM c WHERE ARRAY_CONTAINS(c.items, {"sku": "b"})`, "", `[]`},
	{"ARRAY_CONTAINS full object", `SELECT VALUE c.id FROM c WHERE ARRAY_CONTAINS(c.items, {"sku":"h","n":1})`, "", `["p9"]`},
	{"ARRAY_LENGTH", `SELECT VALUE ARRAY_LENGTH(c.tags) FROM c`, "", `[2,1,2,0,1,2,1,2]`},
	{"ARRAY_LENGTH in filter", `SELECT VALUE c.id FROM c WHERE ARRAY_LENGTH(c.tags) > 1`, "", `["p1","p2","p6","p9"]`},

	// String functions (startswith, endswith, contains: the optional third
	// argument ignores case).
	{"STARTSWITH", `SELECT VALUE c.id FROM c WHERE STARTSWITH(c.name, "b")`, "", `["p2"]`},
	{"STARTSWITH is case sensitive", `SELECT VALUE c.id FROM c WHERE STARTSWITH(c.name, "h")`, "", `[]`},
	{"STARTSWITH ignoring case", `SELECT VALUE c.id FROM c WHERE STARTSWITH(c.name, "h", true)`, "", `["p9"]`},
	{"ENDSWITH", `SELECT VALUE c.id FROM c WHERE ENDSWITH(c.name, "er")`, "", `["p5","p6","p9"]`},
	{"ENDSWITH ignoring case", `SELECT VALUE c.id FROM c WHERE ENDSWITH(c.name, "K", true)`, "", `["p10","p4"]`},
	{"CONTAINS", `SELECT VALUE c.id FROM c WHERE CONTAINS(c.name, "a")`, "", `["p3","p5","p9"]`},
	{"CONTAINS ignoring case", `SELECT VALUE c.id FROM c WHERE CONTAINS(c.name, "a", true)`, "", `["p1","p3","p5","p9"]`},
	{"CONTAINS on a string price only", `SELECT VALUE c.id FROM c WHERE CONTAINS(c.price, "2")`, "", `["p4"]`},
	{"LOWER", `SELECT VALUE LOWER(c.name) FROM c WHERE c.category = "tools"`, "", `["anvil","bolt","hammer"]`},
	{"UPPER", `SELECT VALUE UPPER(c.name) FROM c WHERE c.category = "office"`, "", `["ERASER","FOLDER","GLUE"]`},
	{"LENGTH", `SELECT VALUE LENGTH(c.name) FROM c WHERE c.category = "furniture"`, "", `[5,4]`},
	{"LENGTH counts characters", `SELECT VALUE LENGTH("héllo")`, "", `[5]`},
	// substring: the start is zero-based.
	{"SUBSTRING", `SELECT VALUE SUBSTRING(c.name, 1, 3) FROM c WHERE c.id = "p1"`, "", `["nvi"]`},
	{"SUBSTRING past the end", `SELECT VALUE SUBSTRING("abc", 1, 10)`, "", `["bc"]`},
	{"SUBSTRING start past the end", `SELECT VALUE SUBSTRING("abc", 5, 1)`, "", `[""]`},
	{"CONCAT", `SELECT VALUE CONCAT(c.name, "-", c.category) FROM c WHERE c.category = "furniture"`, "", `["Chair-furniture","desk-furniture"]`},
	{"CONCAT with undefined", `SELECT VALUE CONCAT(c.name, c.missing) FROM c WHERE c.id = "p1"`, "", `[]`},
	{"function names ignore case", `SELECT VALUE lower(c.name) FROM c WHERE c.id = "p2"`, "", `["bolt"]`},

	// Math functions (round: half away from zero).
	{"ABS", `SELECT VALUE ABS(c.qty) FROM c WHERE c.id = "p7"`, "", `[1]`},
	{"FLOOR", `SELECT VALUE FLOOR(c.price) FROM c WHERE c.id = "p7"`, "", `[3]`},
	{"CEILING", `SELECT VALUE CEILING(c.price) FROM c WHERE c.id = "p7"`, "", `[4]`},
	{"ROUND half up", `SELECT VALUE ROUND(c.qty) FROM c WHERE c.id = "p10"`, "", `[5]`},
	{"ROUND negative half away from zero", `SELECT VALUE ROUND(-2.5)`, "", `[-3]`},
	{"ABS of a string is undefined", `SELECT VALUE ABS(c.price) FROM c WHERE c.id = "p4"`, "", `[]`},

	// Aggregates (count, sum, avg, min, max).
	{"COUNT", `SELECT VALUE COUNT(1) FROM c`, "", `[10]`},
	{"COUNT with alias", `SELECT COUNT(1) AS n FROM c WHERE c.category = "tools"`, "", `[{"n":4}]`},
	{"COUNT unnamed", `SELECT COUNT(1) FROM c`, "", `[{"$1":10}]`},
	{"COUNT skips undefined", `SELECT VALUE COUNT(c.price) FROM c`, "", `[9]`},
	{"SUM", `SELECT VALUE SUM(c.qty) FROM c`, "", `[180.5]`},
	// sum: if any argument is a string, boolean or null, SUM is undefined.
	{"SUM over mixed types is undefined", `SELECT VALUE SUM(c.price) FROM c`, "", `[]`},
	{"SUM over numbers", `SELECT VALUE SUM(c.price) FROM c WHERE IS_NUMBER(c.price)`, "", `[133.25]`},
	{"AVG", `SELECT VALUE AVG(c.qty) FROM c WHERE c.category = "tools"`, "", `[28.75]`},
	// min, max: mixed types compare null < booleans < numbers < strings.
	{"MIN over mixed types", `SELECT VALUE MIN(c.price) FROM c`, "", `[null]`},
	{"MAX over mixed types", `SELECT VALUE MAX(c.price) FROM c`, "", `["120"]`},
	{"MAX", `SELECT VALUE MAX(c.qty) FROM c`, "", `[100]`},
	{"MIN of nothing is undefined", `SELECT VALUE MIN(c.missing) FROM c`, "", `[]`},
	{"COUNT of no rows", `SELECT VALUE COUNT(1) FROM c WHERE c.missing = 1`, "", `[0]`},
	{"SUM of no rows", `SELECT VALUE SUM(c.qty) FROM c WHERE c.missing = 1`, "", `[0]`},
	{"several aggregates", `SELECT MIN(c.qty) AS lo, MAX(c.qty) AS hi, COUNT(1) AS n FROM c`, "", `[{"lo":-1,"hi":100,"n":10}]`},
	{"aggregates in an expression", `SELECT VALUE SUM(c.qty) / COUNT(1) FROM c`, "", `[18.05]`},

	// GROUP BY. group-by: an undefined key is a group of its own, whose row
	// leaves the property out ({}). Groups come in the order they are first
	// met (Cosmos DB does not specify one).
	{"group by", `SELECT c.category, COUNT(1) AS n FROM c GROUP BY c.category`, "", `[{"category":"tools","n":4},{"category":null,"n":1},{"category":"furniture","n":2},{"category":"office","n":3}]`},
	{"group by value", `SELECT VALUE COUNT(1) FROM c GROUP BY c.category`, "", `[4,1,2,3]`},
	{"group by with undefined key", `SELECT c.owner.city AS city, SUM(c.qty) AS qty FROM c GROUP BY c.owner.city`, "", `[{"city":"Oslo","qty":6.5},{"city":"Bergen","qty":105},{"qty":59},{"city":null,"qty":10}]`},
	{"group by MAX mixed", `SELECT c.category, MAX(c.price) AS best FROM c WHERE c.category = "furniture" GROUP BY c.category`, "", `[{"category":"furniture","best":"120"}]`},
	{"group by AVG undefined on mixed types", `SELECT c.category AS cat, AVG(c.price) AS avg FROM c GROUP BY c.category`, "", `[{"cat":"tools"},{"cat":null,"avg":12},{"cat":"furniture"},{"cat":"office"}]`},
	{"group by booleans", `SELECT COUNT(1) AS n, c.active FROM c GROUP BY c.active`, "", `[{"n":5,"active":true},{"n":2,"active":false},{"n":1,"active":null},{"n":2}]`},
	{"distinct over groups", `SELECT DISTINCT VALUE COUNT(1) FROM c GROUP BY c.active`, "", `[5,2,1]`},
	{"group key as value", `SELECT VALUE c.category FROM c GROUP BY c.category`, "", `["tools",null,"furniture","office"]`},
	{"group by two keys", `SELECT c.category, c.active, COUNT(1) AS n FROM c WHERE c.category = "tools" GROUP BY c.category, c.active`, "", `[{"category":"tools","active":true,"n":2},{"category":"tools","n":1},{"category":"tools","active":false,"n":1}]`},

	// JOIN and FROM ... IN over arrays (join): a document meets each
	// element; a document without the array yields no rows.
	{"FROM IN", `SELECT VALUE t FROM t IN c.tags`, "", `["heavy","metal","paper","metal","small","small","paper","small","metal","metal","heavy"]`},
	{"JOIN filter", `SELECT VALUE c.id FROM c JOIN t IN c.tags WHERE t = "metal"`, "", `["p1","p2","p8","p9"]`},
	{"JOIN projection", `SELECT c.id, t AS tag FROM c JOIN t IN c.tags WHERE c.category = "office"`, "", `[{"id":"p5","tag":"small"},{"id":"p6","tag":"paper"},{"id":"p6","tag":"small"}]`},
	{"JOIN count", `SELECT VALUE COUNT(1) FROM c JOIN t IN c.tags`, "", `[11]`},
	{"JOIN group by element", `SELECT t, COUNT(1) AS n FROM c JOIN t IN c.tags GROUP BY t`, "", `[{"t":"heavy","n":2},{"t":"metal","n":4},{"t":"paper","n":2},{"t":"small","n":3}]`},
	{"JOIN objects", `SELECT c.id, i.sku, i.n FROM c JOIN i IN c.items`, "", `[{"id":"p8","sku":"a","n":2},{"id":"p8","sku":"b","n":5},{"id":"p9","sku":"h","n":1}]`},
	{"JOIN sum", `SELECT VALUE SUM(i.n) FROM c JOIN i IN c.items`, "", `[8]`},
	{"FROM IN with filter", `SELECT VALUE i.sku FROM i IN c.items WHERE i.n > 1`, "", `["a","b"]`},
	{"two JOINs", `SELECT c.id, t, d FROM c JOIN t IN c.tags JOIN d IN c.dims WHERE c.id = "p9"`, "", `[{"id":"p9","t":"metal","d":10},{"id":"p9","t":"metal","d":20},{"id":"p9","t":"metal","d":30},{"id":"p9","t":"heavy","d":10},{"id":"p9","t":"heavy","d":20},{"id":"p9","t":"heavy","d":30}]`},
	{"JOIN in parentheses", `SELECT VALUE c.id FROM c JOIN (t IN c.tags) WHERE t = "paper"`, "", `["p10","p6"]`},
	{"JOIN ordered by element", `SELECT VALUE i.sku FROM c JOIN i IN c.items ORDER BY i.n DESC`, "", `["b","a","h"]`},

	// Parameters (parameterized-queries).
	{"string parameter", `SELECT VALUE c.id FROM c WHERE c.category = @cat`, `[{"name":"@cat","value":"office"}]`, `["p5","p6","p7"]`},
	{"number parameters", `SELECT VALUE c.id FROM c WHERE c.price > @min AND c.price < @max`, `[{"name":"@min","value":1},{"name":"@max","value":20}]`, `["p10","p7","p9"]`},
	{"array parameter", `SELECT VALUE c.id FROM c WHERE ARRAY_CONTAINS(@ids, c.id)`, `[{"name":"@ids","value":["p3","p9","zz"]}]`, `["p3","p9"]`},
	{"object parameter", `SELECT VALUE c.id FROM c WHERE c.owner = @o`, `[{"name":"@o","value":{"name":"Cid"}}]`, `["p4"]`},
	{"null parameter", `SELECT VALUE c.id FROM c WHERE c.price = @p`, `[{"name":"@p","value":null}]`, `["p5"]`},
	{"offset limit parameters", `SELECT VALUE c.id FROM c ORDER BY c.qty OFFSET @o LIMIT @l`, `[{"name":"@o","value":8},{"name":"@l","value":5}]`, `["p5","p2"]`},
	{"parameter in projection", `SELECT @x AS x, c.id FROM c WHERE c.id = "p1"`, `[{"name":"@x","value":[1,{"a":true}]}]`, `[{"x":[1,{"a":true}],"id":"p1"}]`},
	{"unused parameter is allowed", `SELECT VALUE 1`, `[{"name":"@unused","value":1}]`, `[1]`},
}
