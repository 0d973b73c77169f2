-- AlterTable
ALTER TABLE "VirtualLive" ADD COLUMN "outputProfile" TEXT;

-- CreateTable
CREATE TABLE "VodRendition" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "vodResourceId" TEXT NOT NULL,
    "profileKey" TEXT NOT NULL,
    "path" TEXT,
    "state" TEXT NOT NULL DEFAULT 'CONFORMING',
    "progress" REAL NOT NULL DEFAULT 0,
    "error" TEXT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "VodRendition_vodResourceId_fkey" FOREIGN KEY ("vodResourceId") REFERENCES "VodResource" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateIndex
CREATE UNIQUE INDEX "VodRendition_vodResourceId_profileKey_key" ON "VodRendition"("vodResourceId", "profileKey");
