/// How well clusters segment images with known classes: mean IoU and pixel accuracy after the
/// one-to-one matching of clusters to classes that maximises the summed IoU.
///
/// Classes left without a cluster (more classes than clusters) score an IoU of 0; pixels of
/// clusters left without a class (more clusters than classes) count as wrong.
public struct SegmentationScore: Codable, Equatable, Sendable {
    public var meanIoU: Double
    public var pixelAccuracy: Double
    /// IoU of each class with its matched cluster.
    public var classIoU: [Double]
    /// The cluster matched to each class, -1 for none.
    public var clusterOfClass: [Int]

    enum CodingKeys: String, CodingKey {
        case meanIoU = "mean_iou", pixelAccuracy = "pixel_accuracy", classIoU = "class_iou", clusterOfClass = "cluster_of_class"
    }

    /// `confusion[class][cluster]` counts the pixels of the class that fell in the cluster.
    public init(confusion: [[Int]]) {
        let classes = confusion.count, clusters = confusion.first?.count ?? 0
        let classSizes = confusion.map { $0.reduce(0, +) }
        let clusterSizes = (0..<clusters).map { k in confusion.reduce(0) { $0 + $1[k] } }
        let total = classSizes.reduce(0, +)
        func iou(_ c: Int, _ k: Int) -> Double {
            let union = classSizes[c] + clusterSizes[k] - confusion[c][k]
            return union == 0 ? 0 : Double(confusion[c][k]) / Double(union)
        }
        let scores = (0..<classes).map { c in (0..<clusters).map { iou(c, $0) } }
        clusterOfClass = [Int](repeating: -1, count: classes)
        classIoU = [Double](repeating: 0, count: classes)
        var correct = 0
        for pair in Matching.maximumScore(scores) {
            clusterOfClass[pair.row] = pair.column
            classIoU[pair.row] = scores[pair.row][pair.column]
            correct += confusion[pair.row][pair.column]
        }
        meanIoU = classes == 0 ? 0 : classIoU.reduce(0, +) / Double(classes)
        pixelAccuracy = total == 0 ? 0 : Double(correct) / Double(total)
    }
}
