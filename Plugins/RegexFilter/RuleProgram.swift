/// A rule tree laid out flat for the hot path: nodes, child lists and leaf
/// rules in plain buffers, so evaluating a record touches no reference counts.
///
/// Evaluation stops as soon as the outcome is known (`all` at the first
/// drop, `any` at the first keep); a rejection ends it at once.
final class RuleProgram {
    struct Node {
        enum Kind { case leaf, all, any }
        let kind: Kind
        /// For leaves: the index in `leaves` (and in `rules`).
        let leaf: Int
        /// For groups: the range of this node's children in `children`.
        let firstChild: Int
        let childCount: Int
    }

    /// The trivial part, copied into locals once per batch.
    struct Code {
        let nodes: UnsafeBufferPointer<Node>
        let children: UnsafeBufferPointer<Int>
        let leaves: UnsafeBufferPointer<LeafRule>
        /// Set when the tree is one group of rules, in order (no nesting):
        /// the usual shape, evaluated as a plain loop over `leaves`.
        let flat: Node.Kind?

        @inline(__always)
        func evaluate(_ record: UnsafeRawBufferPointer, handles: MatchHandles, text: CanonicalText) -> Verdict {
            switch flat {
            case .all:
                for index in 0..<leaves.count {
                    let verdict = evaluate(leaf: index, record, handles: handles, text: text)
                    if case .keep = verdict { continue }
                    return verdict
                }
                return .keep
            case .any:
                for index in 0..<leaves.count {
                    let verdict = evaluate(leaf: index, record, handles: handles, text: text)
                    if case .drop = verdict { continue }
                    return verdict
                }
                return .drop
            case .leaf, nil:
                return evaluate(node: 0, record, handles: handles, text: text)
            }
        }

        private func evaluate(node index: Int, _ record: UnsafeRawBufferPointer, handles: MatchHandles, text: CanonicalText) -> Verdict {
            let node = nodes[index]
            switch node.kind {
            case .leaf:
                return evaluate(leaf: node.leaf, record, handles: handles, text: text)
            case .all:
                for position in node.firstChild..<(node.firstChild + node.childCount) {
                    let child = nodes[children[position]]
                    let verdict = child.kind == .leaf
                        ? evaluate(leaf: child.leaf, record, handles: handles, text: text)
                        : evaluate(node: children[position], record, handles: handles, text: text)
                    if case .keep = verdict { continue }
                    return verdict
                }
                return .keep
            case .any:
                for position in node.firstChild..<(node.firstChild + node.childCount) {
                    let child = nodes[children[position]]
                    let verdict = child.kind == .leaf
                        ? evaluate(leaf: child.leaf, record, handles: handles, text: text)
                        : evaluate(node: children[position], record, handles: handles, text: text)
                    if case .drop = verdict { continue }
                    return verdict
                }
                return .drop
            }
        }

        @inline(__always)
        private func evaluate(leaf index: Int, _ record: UnsafeRawBufferPointer, handles: MatchHandles, text: CanonicalText) -> Verdict {
            let rule = leaves[index]
            let hit: Bool
            switch rule.match(record, handles: handles, text: text) {
            case .matched: hit = true
            case .notMatched: hit = false
            case .failed(let code): return .failed(rule: index, code: code)
            case .missing:
                switch rule.missing {
                case .nonmatch: hit = false
                case .match: hit = true
                case .reject: return .missing(rule: index)
                }
            }
            return hit == rule.include ? .keep : .drop
        }
    }

    /// The rules as configured: they own the patterns and paths the leaves point into.
    let rules: [RecordRule]
    let code: Code

    init(tree: RuleTree, rules: [RecordRule]) {
        self.rules = rules
        var nodes: [Node] = []
        var children: [Int] = []
        // Breadth-first: a group's children are contiguous in `children`.
        var queue: [(tree: RuleTree, slot: Int)] = [(tree, 0)]
        nodes.append(Node(kind: .leaf, leaf: 0, firstChild: 0, childCount: 0))
        var head = 0
        while head < queue.count {
            let (tree, slot) = queue[head]
            head += 1
            switch tree {
            case .rule(let leaf):
                nodes[slot] = Node(kind: .leaf, leaf: leaf, firstChild: 0, childCount: 0)
            case .all(let items), .any(let items):
                let kind: Node.Kind = if case .all = tree { .all } else { .any }
                nodes[slot] = Node(kind: kind, leaf: 0, firstChild: children.count, childCount: items.count)
                for item in items {
                    children.append(nodes.count)
                    queue.append((item, nodes.count))
                    nodes.append(Node(kind: .leaf, leaf: 0, firstChild: 0, childCount: 0))
                }
            }
        }
        // Flat: the root's children are exactly the leaves 0..<n, in order.
        let root = nodes[0]
        let isFlat = root.kind != .leaf && root.childCount == rules.count
            && (0..<root.childCount).allSatisfy { nodes[children[root.firstChild + $0]].kind == .leaf && nodes[children[root.firstChild + $0]].leaf == $0 }
        code = Code(
            nodes: UnsafeBufferPointer(Self.copy(nodes)),
            children: UnsafeBufferPointer(Self.copy(children)),
            leaves: UnsafeBufferPointer(Self.copy(rules.map(\.leaf))),
            flat: isFlat ? root.kind : nil)
    }

    deinit {
        code.nodes.deallocate()
        code.children.deallocate()
        code.leaves.deallocate()
    }

    private static func copy<T>(_ values: [T]) -> UnsafeMutableBufferPointer<T> {
        let buffer = UnsafeMutableBufferPointer<T>.allocate(capacity: max(1, values.count))
        _ = buffer.initialize(from: values)
        return UnsafeMutableBufferPointer(rebasing: buffer[0..<values.count])
    }

    /// The dead-letter reason of a rejecting verdict.
    func reason(_ verdict: Verdict, matcher: Matcher) -> String {
        switch verdict {
        case .failed(let index, let code):
            let rule = rules[index]
            return "regex_filter: \(rule.label) \(rule.pattern.display) on field '\(rule.path.text)': \(matcher.describe(code)); record rejected"
        case .missing(let index):
            let rule = rules[index]
            return "regex_filter: \(rule.label): field '\(rule.path.text)' is missing (missing: reject)"
        case .keep, .drop:
            return "regex_filter: no rejection"
        }
    }
}
