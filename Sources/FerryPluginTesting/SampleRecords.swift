/// Records fed to sinks and transforms when the author gives none: the
/// shapes that break naive plugins (nesting, arrays, unicode, nulls, numbers
/// of every width, dates).
public enum SampleRecords {
    public static let standard: [Record] = [
        #"{"_id": 1, "sku": "BK-0001", "name": "Ada's notebook", "price": {"$numberDecimal": "12.50"}, "stock": 3, "category": "books", "tags": ["paper", "a5"], "updated_at": {"$date": "2026-01-02T03:04:05.678Z"}}"#,
        #"{"_id": 2, "sku": "GM-0002", "name": "Zürich — Spiel", "price": {"$numberDecimal": "39.99"}, "stock": 0, "category": "games", "tags": [], "updated_at": {"$date": "2026-01-02T03:04:05.678Z"}}"#,
        #"{"_id": 3, "sku": "TY-0003", "name": "日本語のおもちゃ", "price": {"$numberDecimal": "5.00"}, "stock": {"$numberLong": "9000000000"}, "category": "toys", "tags": ["x"], "updated_at": {"$date": "2026-02-03T00:00:00Z"}}"#,
        #"{"_id": 4, "sku": "BK-0004", "name": "Null fields", "price": null, "stock": 1, "category": "books", "tags": null, "updated_at": {"$date": "2026-02-03T00:00:00Z"}}"#,
        #"{"_id": 5, "sku": "MU-0005", "name": "Nested", "price": {"$numberDecimal": "1.10"}, "stock": 7, "category": "music", "tags": ["a", "b"], "updated_at": {"$date": "2026-03-04T05:06:07Z"}, "dimensions": {"w": 1.5, "h": 2, "unit": "cm"}}"#,
        #"{"_id": 6, "sku": "GM-0006", "name": "Emoji 🎲", "price": {"$numberDecimal": "19.00"}, "stock": 12, "category": "games", "tags": ["dice"], "updated_at": {"$date": "2026-03-04T05:06:07Z"}, "active": true}"#,
    ].map { try! Record(json: $0) }
}
